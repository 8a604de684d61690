"""The escalation review of a month: load the data, evaluate it, store the proposals.

The evaluation itself is a pure function (``workflow_app.evaluation``); this module turns
database rows into its inputs and its proposal drafts into pending decisions, never
changing a level (DESIGN.md principle 2). Re-running the review for the same month creates
nothing twice; revised data that changes a pending proposal's evidence supersedes it with
a new, linked one, and a decided proposal whose evidence changed is flagged to its decider
(DOMAIN.md decision 10).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from state_machines import get_framework
from workflow_app.clock import utcnow
from workflow_app.evaluation import (
    ConcernInput,
    FinancePoint,
    MeasureInput,
    MonthPoint,
    UnitEvaluation,
    UnitInput,
    evaluate_unit,
)
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, Decision, EscalationCase
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Person, Unit
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.services.audit import record_event

# How many months of history the evaluation sees (SPC needs a baseline).
HISTORY_MONTHS = 24


@dataclass
class ReviewOutcome:
    """What a review run did."""

    period: date
    units: int = 0
    created: list[Decision] = field(default_factory=list)
    superseded: list[Decision] = field(default_factory=list)
    unchanged: int = 0
    flagged: list[Decision] = field(default_factory=list)
    evaluations: list[UnitEvaluation] = field(default_factory=list)
    plans: list = field(default_factory=list)  # plan_delivery.PlanAssessment


def _months_back(period: date, n: int) -> date:
    month = period.year * 12 + period.month - 1 - n
    return date(month // 12, month % 12 + 1, 1)


def latest_actuals(measure_ids: list[int], start: date, end: date) -> dict[tuple[int, date], float]:
    """The current (highest-revision) actual of each measure-month in [start, end]."""
    if not measure_ids:
        return {}
    latest = (
        sa.select(
            MonthlyActual.measure_id,
            MonthlyActual.period,
            sa.func.max(MonthlyActual.revision).label("revision"),
        )
        .where(
            MonthlyActual.measure_id.in_(measure_ids),
            MonthlyActual.period.between(start, end),
        )
        .group_by(MonthlyActual.measure_id, MonthlyActual.period)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(MonthlyActual.measure_id, MonthlyActual.period, MonthlyActual.value).join(
            latest,
            sa.and_(
                MonthlyActual.measure_id == latest.c.measure_id,
                MonthlyActual.period == latest.c.period,
                MonthlyActual.revision == latest.c.revision,
            ),
        )
    )
    return {(m, p): float(v) for m, p, v in rows}


def unit_input(unit: Unit, period: date) -> UnitInput:
    """Everything the evaluation needs to know about ``unit`` up to ``period``."""
    start = _months_back(period, HISTORY_MONTHS - 1)
    months = [_months_back(period, n) for n in range(HISTORY_MONTHS - 1, -1, -1)]
    measures = db.session.scalars(
        sa.select(Measure)
        .where(Measure.unit_id == unit.id, Measure.is_active.is_(True))
        .order_by(Measure.code)
    ).all()
    ids = [m.id for m in measures]
    actuals = latest_actuals(ids, start, period)
    trajectories = (
        {
            (t.measure_id, t.period): float(t.value)
            for t in db.session.scalars(
                sa.select(TrajectoryValue).where(
                    TrajectoryValue.measure_id.in_(ids),
                    TrajectoryValue.period.between(start, period),
                )
            )
        }
        if ids
        else {}
    )
    # The unit's plans; a plan's planned values are its measures' trajectory for those months.
    from workflow_app.services.plan_delivery import plans_for_review

    plans, planned = plans_for_review(unit, start, period)
    trajectories.update(planned)
    measure_inputs = tuple(
        MeasureInput(
            code=m.code,
            name=m.name,
            domain=m.domain.code,
            kind=m.kind,
            target=float(m.target),
            direction=m.direction,
            tolerance=float(m.tolerance) if m.tolerance is not None else None,
            unit_of_measure=m.unit_of_measure,
            series=tuple(
                MonthPoint(p, actuals.get((m.id, p)), trajectories.get((m.id, p))) for p in months
            ),
        )
        for m in measures
    )
    finance_rows = db.session.scalars(
        sa.select(FinancePosition)
        .where(FinancePosition.unit_id == unit.id, FinancePosition.period.between(start, period))
        .order_by(FinancePosition.period, FinancePosition.revision)
    ).all()
    latest_finance: dict[date, FinancePosition] = {}
    for row in finance_rows:
        latest_finance[row.period] = row  # ordered by revision: the last one wins
    finance = tuple(
        FinancePoint(p, float(r.ytd_variance), float(r.forecast_variance))
        for p, r in sorted(latest_finance.items())
    )
    concerns = tuple(
        ConcernInput(
            kind=c.kind,
            severity=c.severity,
            domain=c.domain.code,
            summary=c.summary,
            occurred_on=c.occurred_on or c.recorded_at.date(),
        )
        for c in db.session.scalars(sa.select(Concern).where(Concern.unit_id == unit.id))
    )
    cases = db.session.scalars(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.framework == unit.framework
        )
    ).all()
    levels = {case.track: case.level for case in cases}
    level_since = {case.track: case.level_since.date() for case in cases}
    return UnitInput(
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        framework=unit.framework,
        levels=levels,
        measures=measure_inputs,
        finance=finance,
        concerns=concerns,
        plans=plans,
        level_since=level_since,
    )


def _case_for(unit: Unit, track: str) -> EscalationCase:
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id,
            EscalationCase.framework == unit.framework,
            EscalationCase.track == track,
        )
    )
    if case is None:  # a per-measure track (framework C) seen for the first time
        framework = get_framework(unit.framework)
        case = EscalationCase(
            unit=unit, framework=unit.framework, track=track, level=framework.initial_level(track)
        )
        db.session.add(case)
        db.session.flush()
    return case


def _proposal_key(case: EscalationCase, period: date, rule_id: str, to: str, fp: str) -> str:
    return f"proposal:{case.id}:{period:%Y-%m}:{rule_id}:{to}:{fp[:16]}"


def store_proposals(
    unit: Unit, evaluation: UnitEvaluation, period: date, outcome: ReviewOutcome, now: datetime
) -> None:
    """Turn the evaluation's drafts into pending decisions (see the module docstring)."""
    framework = get_framework(unit.framework)
    fired: set[tuple[int, str, str]] = set()
    for draft in evaluation.proposals:
        case = _case_for(unit, draft.track)
        fired.add((case.id, draft.rule_id, draft.to_level))
        key = _proposal_key(case, period, draft.rule_id, draft.to_level, draft.fingerprint)
        if db.session.scalar(sa.select(Decision.id).where(Decision.dedupe_key == key)):
            outcome.unchanged += 1
            continue
        earlier = db.session.scalars(
            sa.select(Decision).where(
                Decision.case_id == case.id,
                Decision.origin == "engine",
                Decision.period == period,
                Decision.rule_id == draft.rule_id,
                Decision.to_level == draft.to_level,
            )
        ).all()
        pending = next((d for d in earlier if d.status == "pending"), None)
        transition = framework.transition(draft.track, case.level, draft.to_level)
        if transition is None:
            continue  # the case moved since; the evaluation's draft no longer applies
        proposal = Decision(
            case_id=case.id,
            kind=draft.kind,
            from_level=case.level,
            to_level=draft.to_level,
            status="pending",
            signature_rule=transition.signed_by,
            reason=draft.summary,
            evidence=json.dumps(draft.evidence, sort_keys=True, default=str),
            origin="engine",
            rule_id=draft.rule_id,
            period=period,
            fingerprint=draft.fingerprint,
            dedupe_key=key,
            supersedes_id=pending.id if pending else None,
            proposed_at=now,
        )
        db.session.add(proposal)
        db.session.flush()
        outcome.created.append(proposal)
        if pending is not None:
            _supersede(pending, now, f"superseded by proposal {proposal.id}: the data was revised")
            outcome.superseded.append(pending)
        for decided in earlier:
            if decided.status in ("approved", "rejected") and decided.evidence_revised_at is None:
                _flag_revised(decided, proposal, now)
                outcome.flagged.append(decided)
        record_event(
            "proposal.created",
            object_type="decision",
            object_id=proposal.id,
            summary=f"Proposed for {unit.name}: {framework.level_title(case.level)} to "
            f"{framework.level_title(draft.to_level)} ({draft.rule_id}, {period:%b %Y})",
            details={"rule": draft.rule_id, "fingerprint": draft.fingerprint},
        )
    # A pending proposal of this month whose rule no longer fires on the revised data.
    stale = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .where(
            EscalationCase.unit_id == unit.id,
            Decision.origin == "engine",
            Decision.period == period,
            Decision.status == "pending",
            Decision.kind != "earned_autonomy",  # judged by services/autonomy.py (0019)
        )
    ).all()
    for proposal in stale:
        if (proposal.case_id, proposal.rule_id, proposal.to_level) not in fired:
            _supersede(proposal, now, "no longer supported by the revised data")
            outcome.superseded.append(proposal)


def _supersede(proposal: Decision, now: datetime, why: str) -> None:
    proposal.status = "superseded"
    proposal.decided_at = now
    record_event(
        "proposal.superseded",
        object_type="decision",
        object_id=proposal.id,
        summary=f"Proposal {proposal.id} {why}",
    )


def _flag_revised(decided: Decision, newer: Decision, now: datetime) -> None:
    """Tell the people who signed a decided proposal that its evidence has changed."""
    decided.evidence_revised_at = now
    record_event(
        "decision.evidence_revised",
        object_type="decision",
        object_id=decided.id,
        summary=f"Evidence of decision {decided.id} revised after it was decided "
        f"(see proposal {newer.id})",
    )
    for signature in decided.signatures:
        queue_email(
            kind="evidence_revised",
            dedupe_key=f"evidence_revised:{decided.id}:{signature.person_id}:{newer.id}",
            recipient=signature.person,
            subject=f"Evidence revised after your decision on {decided.case.unit.name}",
            template="evidence_revised",
            link=absolute_url(f"/proposals/{newer.id}"),
            decision=decided,
            newer=newer,
        )


def run_review(
    period: date,
    *,
    actor: Person | None = None,
    now: datetime | None = None,
    units: list[Unit] | None = None,
):
    """Evaluate every active unit (or just ``units``) for ``period``; store the proposals.

    Flushes only; the caller commits.
    """
    now = now or utcnow()
    outcome = ReviewOutcome(period)
    if units is None:
        units = db.session.scalars(
            sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
        ).all()
    # Plans in delivery are judged against their trajectory first (failing, review period,
    # back in delivery), so the evaluation sees where each plan now stands.
    from workflow_app.services.plan_delivery import assess_plans

    outcome.plans = assess_plans(period, now=now, units=units)
    for unit in units:
        framework = get_framework(unit.framework)
        evaluation = evaluate_unit(unit_input(unit, period), period, framework)
        outcome.evaluations.append(evaluation)
        store_proposals(unit, evaluation, period, outcome, now)
        outcome.units += 1
    # Units at the lowest level that met every target: earned autonomy proposed (0019).
    from workflow_app.services.autonomy import propose_earned_autonomy

    propose_earned_autonomy(period, units=units, now=now)
    record_event(
        "review.run",
        object_type="review",
        object_id=f"{period:%Y-%m}",
        summary=f"Escalation review for {period:%B %Y}: {outcome.units} units, "
        f"{len(outcome.created)} new proposals, {len(outcome.superseded)} superseded, "
        f"{outcome.unchanged} unchanged",
        actor=actor,
    )
    return outcome


def reviewed_periods() -> set[date]:
    """Months the review has already run for (by the schedule, or by hand)."""
    from workflow_app.models.deadlines import JobRun

    periods = set(
        db.session.scalars(
            sa.select(Decision.period).where(
                Decision.origin == "engine", Decision.period.is_not(None)
            )
        )
    )
    periods.update(
        p
        for p in db.session.scalars(sa.select(JobRun.period).where(JobRun.job == "monthly_review"))
        if p is not None
    )
    return periods


def rereview_after_revision(
    changed: set[tuple[int, date]], *, actor: Person | None = None
) -> list[ReviewOutcome]:
    """Re-run the reviews that revised data can affect (DOMAIN.md decision 10).

    A changed value for a unit in month M can change the evidence of that unit's review of
    M and of every later month already reviewed (history feeds SPC and month counts).
    """
    earliest: dict[int, date] = {}
    for unit_id, period in changed:
        earliest[unit_id] = min(period, earliest.get(unit_id, period))
    outcomes = []
    for period in sorted(reviewed_periods()):
        affected = [
            db.session.get(Unit, unit_id) for unit_id, first in earliest.items() if first <= period
        ]
        if affected:
            outcomes.append(run_review(period, actor=actor, units=affected))
    return outcomes
