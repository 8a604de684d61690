"""Earned autonomy: consistent delivery at the lowest level earns lighter monitoring.

Framework A, 7.8: Level 1 "normal arrangements (consider earned autonomy)": "could result in
freedom from some of monitoring mechanisms and meetings", "fewer performance meetings".
Framework B, 7.1 and 9.3: "consistent delivery earns fewer and lighter meetings"; the cycle per
pillar ends in de-escalation / autonomy. The rules we chose (docs/decisions/0019):

* **Proposed, not granted.** After each monthly review, a unit at its framework's lowest level
  on every track that met all its targets in each of the last :data:`EARNED_AUTONOMY_MONTHS`
  months (every active measure reported and green, no finance threshold of the framework
  crossed with the return in, no concern recorded) gets a pending decision of kind
  ``earned_autonomy`` on the case of its framework's first track, with the evidence. It
  changes no level (``from_level == to_level``).
* **Signed** under the rule of the track's one-step de-escalation into its lowest level
  (framework A performance 2a -> 1: the Executive Team; framework B 2 -> 1: the Director
  General), re-authenticated like any decision. Approval sets ``units.earned_autonomy_since``
  and the unit's meeting cadence becomes lighter (``services/meeting_cadence.py``: framework
  A's quarterly reviews stop and the six-monthly reviews remain; framework B's Level 1 review
  is held half as often).
* **Lost on escalation.** Any escalation of any of the unit's cases clears it, supersedes any
  pending earned-autonomy proposal, and the base cadence is planned again.

Services only flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from state_machines import Duration, get_framework, parse_duration
from workflow_app.clock import as_utc, utcnow
from workflow_app.evaluation import UnitInput
from workflow_app.evaluation.rules import finance_signals, meets_target
from workflow_app.evaluation.text import (
    join_words,
    money,
    month_label,
    month_name,
    value_with_unit,
)
from workflow_app.evaluation.triggers import finance_thresholds
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.org import Person, Unit
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError
from workflow_app.services.meeting_cadence import (
    CADENCE_MEETINGS,
    at_lowest_level,
    base_series,
    level_rank,
    plan_base_meetings,
    plan_cadence_meetings,
    unit_cases,
)
from workflow_app.services.org import unit_contacts

__all__ = [
    "EARNED_AUTONOMY",
    "EARNED_AUTONOMY_MONTHS",
    "AutonomyAssessment",
    "after_level_change",
    "assess_earned_autonomy",
    "assess_input",
    "clear_earned_autonomy",
    "earned_autonomy_months",
    "grant_earned_autonomy",
    "lighter_cadence_text",
    "propose_earned_autonomy",
]

#: The decision kind (``decisions.kind``): no level change, the unit's monitoring is lighter.
EARNED_AUTONOMY = "earned_autonomy"
#: Consecutive months of targets met before earned autonomy is proposed. Local choice: none of
#: the seeds gives a number and no bundled framework file declares one (0019).
EARNED_AUTONOMY_MONTHS = 6


def earned_autonomy_months(framework) -> int:
    """How many consecutive green months earn autonomy under ``framework``.

    The framework file format has no key for it yet (0019), so every framework uses
    :data:`EARNED_AUTONOMY_MONTHS`.
    """
    return EARNED_AUTONOMY_MONTHS


@dataclass
class AutonomyAssessment:
    """Whether a unit has earned autonomy for a month, why not, and the evidence."""

    eligible: bool
    months: list[date] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why not, in plain words
    evidence: dict = field(default_factory=dict)
    summary: str = ""


def _months_back(period: date, n: int) -> date:
    index = period.year * 12 + period.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def assess_input(
    unit_input: UnitInput, period: date, framework, months: int | None = None
) -> AutonomyAssessment:
    """The pure part of the rule: did the unit meet all its targets in each of the ``months``
    months to ``period`` (every active measure reported and on target, the finance return in
    and no finance threshold crossed, no concern recorded)? Levels are not checked here."""
    months = months or earned_autonomy_months(framework)
    window = [_months_back(period, n) for n in range(months - 1, -1, -1)]
    first, last = window[0], window[-1]
    reasons: list[str] = []
    measures_evidence = []
    if not unit_input.measures:
        reasons.append("it has no active measures")
    for measure in unit_input.measures:
        points = {p.period: p for p in measure.series}
        rows = []
        missing, missed = [], []
        for month in window:
            point = points.get(month)
            actual = point.actual if point is not None else None
            if actual is None:
                missing.append(month)
            elif not meets_target(measure, float(actual)):
                missed.append(month)
            rows.append(
                {
                    "period": f"{month:%Y-%m}",
                    "actual": actual,
                    "target": measure.target,
                    "met": actual is not None and meets_target(measure, float(actual)),
                }
            )
        if missed:
            reasons.append(
                f"{measure.name} missed its target "
                f"({value_with_unit(measure.target, measure.unit_of_measure)}) in "
                f"{join_words(month_label(m, True) for m in missed)}"
            )
        if missing:
            reasons.append(
                f"{measure.name} has no figure for "
                f"{join_words(month_label(m, True) for m in missing)}"
            )
        measures_evidence.append(
            {
                "code": measure.code,
                "name": measure.name,
                "target": measure.target,
                "direction": measure.direction,
                "months": rows,
            }
        )
    thresholds = finance_thresholds(framework)
    finance_rows = []
    if thresholds:
        by_month = {p.period: p for p in unit_input.finance}
        for month in window:
            point = by_month.get(month)
            if point is None:
                reasons.append(f"no finance return for {month_label(month, True)}")
                continue
            finance_rows.append(
                {
                    "period": f"{month:%Y-%m}",
                    "ytd_variance": point.ytd_variance,
                    "forecast_variance": point.forecast_variance,
                }
            )
            for signal in finance_signals(unit_input.finance, month, thresholds):
                what = "year-to-date" if signal.kind == "ytd_overspend" else "forecast"
                reasons.append(
                    f"the {what} overspend in {month_label(month, True)} was "
                    f"{money(signal.value)}, more than {money(signal.threshold)}"
                )
    concerns = [
        c
        for c in unit_input.concerns
        if c.occurred_on is None or first <= c.occurred_on < _months_back(last, -1)
    ]
    for concern in concerns:
        reasons.append(f"a concern was recorded: {concern.summary}")
    evidence = {
        "rule": EARNED_AUTONOMY,
        "months_required": months,
        "window": [f"{first:%Y-%m}", f"{last:%Y-%m}"],
        "measures": measures_evidence,
        "finance": finance_rows,
        "finance_thresholds": thresholds,
        "concerns": [c.summary for c in concerns],
    }
    return AutonomyAssessment(not reasons, window, reasons, evidence)


def assess_earned_autonomy(unit: Unit, period: date) -> AutonomyAssessment:
    """Whether ``unit`` has earned autonomy at the review of ``period`` (see the module)."""
    from workflow_app.services.review import unit_input

    return _assess(unit, unit_input(unit, period), period, at_lowest_level(unit))


def _assess(unit: Unit, data: UnitInput, period: date, lowest: bool) -> AutonomyAssessment:
    """:func:`assess_earned_autonomy` on inputs already read (``lowest``: whether every case
    of the unit is at its track's lowest level)."""
    framework = get_framework(unit.framework)
    assessment = assess_input(data, period, framework)
    if not lowest:
        assessment.eligible = False
        assessment.reasons.insert(0, "it is not at the lowest level on every track")
    if unit.earned_autonomy_since is not None:
        assessment.eligible = False
        assessment.reasons.insert(0, "it already has earned autonomy")
    if assessment.eligible:
        n = len(assessment.evidence["measures"])
        first, last = assessment.months[0], assessment.months[-1]
        finance = (
            ", its finance returns stayed within the framework's thresholds"
            if assessment.evidence["finance_thresholds"]
            else ""
        )
        assessment.summary = (
            f"{unit.name} met all {n} of its targets in each of the {len(assessment.months)} "
            f"months from {month_name(first, last)} to {month_name(last)}{finance}, "
            f"no concern was recorded, and it is at the lowest level on every track. "
            f"Earned autonomy means lighter monitoring: {lighter_cadence_text(unit)}"
        )
    return assessment


def _surely_ineligible(data: UnitInput, period: date, framework) -> bool:
    """A quick look at the measures only: True when :func:`assess_input` would surely give a
    reason (a measure without a figure, or off target, in a month of the window; or no
    measures). False means "maybe": the full assessment decides. Used when no reason is
    needed (no pending proposal to supersede), so most units skip building the evidence."""
    if not data.measures:
        return True
    window = {_months_back(period, n) for n in range(earned_autonomy_months(framework))}
    need = len(window)
    for measure in data.measures:
        seen: set[date] = set()
        for point in reversed(measure.series):  # the last point given for a month wins
            if point.period in window and point.period not in seen:
                seen.add(point.period)
                if point.actual is None or not meets_target(measure, float(point.actual)):
                    return True
                if len(seen) == need:
                    break
        if len(seen) < need:
            return True  # a month of the window has no point: no figure
    return False


def lighter_cadence_text(unit: Unit) -> str:
    """What earned autonomy changes for ``unit``, in plain words."""
    from workflow_app.services.cadence import TITLES

    effects = []
    series = base_series(unit)
    if series is not None:
        interval, six = series
        effects.append(
            "its quarterly directorate reviews stop and the six-monthly reviews chaired by the "
            "Chief Executive continue"
            if six and interval * 2 == six
            else f"its reviews are held every {interval * 2} months instead of every {interval}"
        )
    framework = get_framework(unit.framework)
    lowest = {framework.track_for(c.track).levels[0] for c in unit_cases(unit)}
    for level_id in sorted(lowest):
        level = framework.levels.get(level_id)
        for name, every in ((level.cadence or {}) if level else {}).items():
            if name in CADENCE_MEETINGS:
                first = parse_duration(every[0] if isinstance(every, list | tuple) else every)
                lighter = Duration(first.amount * 2, first.unit)
                effects.append(
                    f"the {TITLES.get(name, name.replace('_', ' '))} is held every {lighter} "
                    f"instead of every {first}"
                )
    if not effects:
        return "fewer monitoring meetings."
    return join_words(effects) + "."


def _signature_rule(framework, case: EscalationCase) -> str:
    """The rule of the track's one-step de-escalation into its lowest level, else the
    Executive Team's, else the framework's first rule."""
    levels = framework.track_for(case.track).levels
    if len(levels) > 1:
        transition = framework.transition(case.track, levels[1], levels[0])
        if transition is not None:
            return transition.signed_by
    if "executive_team" in framework.signatures:
        return "executive_team"
    return next(iter(framework.signatures))


def _pending(unit: Unit) -> list[Decision]:
    return list(
        db.session.scalars(
            sa.select(Decision)
            .join(EscalationCase, EscalationCase.id == Decision.case_id)
            .where(
                EscalationCase.unit_id == unit.id,
                Decision.kind == EARNED_AUTONOMY,
                Decision.status == "pending",
            )
            .order_by(Decision.id)
        )
    )


def _supersede(decision: Decision, why: str, now: datetime) -> None:
    decision.status = "superseded"
    decision.decided_at = now
    decision.decision_note = decision.decision_note or f"Superseded: {why}"
    record_event(
        "proposal.superseded",
        object_type="decision",
        object_id=decision.id,
        summary=f"Earned autonomy proposal {decision.id} superseded: {why}",
    )


def _last_rejected_period(unit: Unit) -> date | None:
    return db.session.scalar(
        sa.select(sa.func.max(Decision.period))
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .where(
            EscalationCase.unit_id == unit.id,
            Decision.kind == EARNED_AUTONOMY,
            Decision.status == "rejected",
        )
    )


def _cases_by_unit(units: list[Unit]) -> dict[int, list[EscalationCase]]:
    """:func:`meeting_cadence.unit_cases` for many units in one query."""
    by_id = {unit.id: unit for unit in units}
    out: dict[int, list[EscalationCase]] = {unit.id: [] for unit in units}
    for chunk in _chunks(list(by_id)):
        for case in db.session.scalars(
            sa.select(EscalationCase).where(EscalationCase.unit_id.in_(chunk))
        ):
            if case.framework == by_id[case.unit_id].framework:
                out[case.unit_id].append(case)
    for unit_id, cases in out.items():
        framework = get_framework(by_id[unit_id].framework)
        order = {name: i for i, name in enumerate(framework.tracks)}
        cases.sort(key=lambda c: (order.get(framework.track_for(c.track).name, len(order)), c.id))
    return out


def _pending_by_unit(units: list[Unit]) -> dict[int, list[Decision]]:
    """:func:`_pending` for many units in one query."""
    out: dict[int, list[Decision]] = {unit.id: [] for unit in units}
    for chunk in _chunks(list(out)):
        for unit_id, decision in db.session.execute(
            sa.select(EscalationCase.unit_id, Decision)
            .join(EscalationCase, EscalationCase.id == Decision.case_id)
            .where(
                EscalationCase.unit_id.in_(chunk),
                Decision.kind == EARNED_AUTONOMY,
                Decision.status == "pending",
            )
            .order_by(Decision.id)
        ).tuples():
            out[unit_id].append(decision)
    return out


def _chunks(ids: list[int], size: int = 500):
    for first in range(0, len(ids), size):
        yield ids[first : first + size]


def propose_earned_autonomy(
    period: date, *, units: list[Unit] | None = None, now: datetime | None = None
) -> list[Decision]:
    """Part of the monthly review: propose earned autonomy for every unit (or ``units``) that
    has earned it at ``period``; supersede a pending proposal the data no longer supports.

    Once per unit at a time: nothing new while a proposal is pending; after a rejection, the
    next proposal needs a full run of green months after the rejected one's month. Re-running
    the review creates nothing twice (dedupe key on unit, month and evidence).

    Set-based: the units' pending proposals, cases and inputs are read for all units at once
    (inside ``run_review`` the inputs are the ones it has just read); only a unit that has
    earned autonomy reads more (its last rejection, the dedupe key) before its proposal.
    """
    from workflow_app.services.review import unit_inputs

    now = as_utc(now or utcnow())
    if units is None:
        units = db.session.scalars(
            sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
        ).all()
    active = [unit for unit in units if unit.is_active]
    pending_of = _pending_by_unit(active)
    cases_of = _cases_by_unit(active)

    def lowest(unit: Unit) -> bool:  # meeting_cadence.at_lowest_level on the cases read
        return all(level_rank(case) == 0 for case in cases_of[unit.id])

    # Inputs only for the units that could qualify, in one read (or reused from the review).
    candidates = [u for u in active if u.earned_autonomy_since is None and lowest(u)]
    inputs = _reused_inputs(candidates, period)
    missing = [u for u in candidates if u.id not in inputs]
    inputs.update(unit_inputs(missing, period))

    created = []
    for unit in active:
        pending = pending_of[unit.id]
        if unit.earned_autonomy_since is not None or not lowest(unit):
            # Cheap refusals first; only a unit that could qualify has its months read.
            for decision in pending:
                _supersede(decision, "the unit is no longer at the lowest level", now)
            continue
        framework = get_framework(unit.framework)
        data = inputs[unit.id]
        if not pending and _surely_ineligible(data, period, framework):
            continue  # nothing to supersede, so the reasons are not needed
        assessment = _assess(unit, data, period, True)
        if not assessment.eligible:
            why = assessment.reasons[0] if assessment.reasons else "no longer supported"
            for decision in pending:
                if decision.period is None or decision.period <= period:
                    _supersede(decision, f"at the review of {period:%B %Y}, {why}", now)
            continue
        if pending:
            continue
        rejected = _last_rejected_period(unit)
        if rejected is not None and assessment.months[0] <= rejected:
            continue
        case = cases_of[unit.id][0] if cases_of[unit.id] else None  # anchor_case
        if case is None:
            continue
        evidence = json.dumps(assessment.evidence, sort_keys=True, default=str)
        fingerprint = hashlib.sha256(evidence.encode()).hexdigest()
        key = f"{EARNED_AUTONOMY}:{unit.id}:{period:%Y-%m}:{fingerprint[:16]}"
        if db.session.scalar(sa.select(Decision.id).where(Decision.dedupe_key == key)):
            continue
        decision = Decision(
            case_id=case.id,
            kind=EARNED_AUTONOMY,
            from_level=case.level,
            to_level=case.level,
            status="pending",
            signature_rule=_signature_rule(framework, case),
            reason=assessment.summary,
            evidence=evidence,
            origin="engine",
            rule_id=EARNED_AUTONOMY,
            period=period,
            fingerprint=fingerprint,
            dedupe_key=key,
            proposed_at=now,
        )
        db.session.add(decision)
        db.session.flush()
        record_event(
            "proposal.created",
            object_type="decision",
            object_id=decision.id,
            summary=f"Proposed for {unit.name}: earned autonomy (lighter monitoring) after "
            f"{len(assessment.months)} months of targets met ({period:%b %Y})",
            details={"rule": EARNED_AUTONOMY, "fingerprint": fingerprint},
        )
        created.append(decision)
    return created


def _reused_inputs(units: list[Unit], period: date) -> dict[int, UnitInput]:
    """The inputs ``run_review`` has just read for ``units`` (see ``review.unit_input``)."""
    from workflow_app.services.review import reused_input

    out = {}
    for unit in units:
        data = reused_input(unit, period)
        if data is not None:
            out[unit.id] = data
    return out


def grant_earned_autonomy(decision: Decision, actor: Person, now: datetime) -> None:
    """Apply an approved earned-autonomy decision (called by ``decisions._apply`` once the
    signatures are complete): no level change; the unit's cadence becomes lighter."""
    case = decision.case
    unit = case.unit
    framework = get_framework(case.framework)
    if decision.to_level != decision.from_level or decision.to_level != case.level:
        raise ServiceError(
            "Earned autonomy does not change the level; approve it as proposed or reject it"
        )
    if not at_lowest_level(unit):
        raise ServiceError(
            f"{unit.name} is no longer at the lowest level on every track, so it cannot be "
            "given earned autonomy; nothing was signed"
        )
    unit.earned_autonomy_since = now
    db.session.flush()
    record_event(
        "autonomy.granted",
        object_type="unit",
        object_id=unit.id,
        summary=f"{unit.name} given earned autonomy (decision {decision.id}): "
        f"{lighter_cadence_text(unit)}",
        actor=actor,
        details={"decision_id": decision.id},
    )
    for other in _pending(unit):
        if other.id != decision.id:
            _supersede(other, f"earned autonomy granted by decision {decision.id}", now)
    plan_cadence_meetings(unit, now=now)
    for person in unit_contacts(unit):
        queue_email(
            kind="earned_autonomy",
            dedupe_key=f"decision:{decision.id}:autonomy:{person.id}",
            recipient=person,
            subject=f"{unit.name}: earned autonomy, lighter monitoring from {now:%d %B %Y}",
            template="earned_autonomy",
            link=absolute_url(f"/decisions/{decision.id}"),
            unit=unit,
            decision=decision,
            framework=framework,
            effect=lighter_cadence_text(unit),
        )


def clear_earned_autonomy(
    unit: Unit, *, reason: str, actor: Person | None = None, now: datetime | None = None
) -> bool:
    """End the unit's earned autonomy (the base cadence applies again); False if it had none.
    The caller re-plans the meetings (``plan_base_meetings``)."""
    now = as_utc(now or utcnow())
    for decision in _pending(unit):
        _supersede(decision, reason, now)
    if unit.earned_autonomy_since is None:
        return False
    unit.earned_autonomy_since = None
    db.session.flush()
    record_event(
        "autonomy.ended",
        object_type="unit",
        object_id=unit.id,
        summary=f"{unit.name}'s earned autonomy ended: {reason}; the base cadence applies again",
        actor=actor,
    )
    return True


def after_level_change(
    case: EscalationCase, old_level: str, new_level: str, actor: Person | None, now: datetime
) -> None:
    """Called by ``decisions._apply`` on every level change: an escalation of any of the
    unit's cases ends its earned autonomy (the cadence is re-planned with the consequences)."""
    levels = get_framework(case.framework).track_for(case.track).levels
    if (
        old_level in levels
        and new_level in levels
        and levels.index(new_level) > levels.index(old_level)
    ):
        framework = get_framework(case.framework)
        if clear_earned_autonomy(
            case.unit,
            reason=f"{framework.track_for(case.track).title} escalated to "
            f"{framework.level_title(new_level)}",
            actor=actor,
            now=now,
        ):
            # The base cadence at once; the level's own meetings follow with the consequences.
            plan_base_meetings(case.unit, now=now)
