"""Replaying the framework over past months: what would it have proposed, month by month?

Used to check a framework file (or the demo data) tells a believable story before relying on
it, and by the demo to live through its history (``review_with_assumed_plans``). Each month
every unit is evaluated with the levels reached so far. Plans are not yet recorded in the
database (the recovery plans issue), so the replay assumes one (:class:`AssumedPlans`):
approved the month after the escalation, targeting the measures that were red or showing
special-cause concern when it fired, its actions delivered after ``ACTIONS_DELIVERED_AFTER``
months, and its trajectory met while every targeted measure is green or amber.

:func:`replay` stores nothing and takes every proposal as approved.
:func:`review_with_assumed_plans` is the monthly review (``services.review``) with those
assumed plans: it stores the proposals as pending decisions through
``review.store_proposals``, for people to decide through ``services.decisions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

import sqlalchemy as sa

from state_machines import get_framework
from workflow_app.evaluation import (
    PlanInput,
    ProposalDraft,
    UnitEvaluation,
    UnitInput,
    evaluate_unit,
    rag,
)
from workflow_app.extensions import db
from workflow_app.models.org import Person, Unit
from workflow_app.services.audit import record_event
from workflow_app.services.review import ReviewOutcome, store_proposals, unit_input

ACTIONS_DELIVERED_AFTER = 4


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class ReplayStep:
    """One proposal the replay took as approved."""

    period: date
    unit_code: str
    proposal: ProposalDraft


@dataclass
class Replay:
    """The story the framework tells over the replayed months."""

    steps: list[ReplayStep] = field(default_factory=list)
    levels: dict[str, dict[str, str]] = field(default_factory=dict)

    def reached(self, level: str) -> set[str]:
        """Units that were at ``level`` on some track at some point."""
        return {s.unit_code for s in self.steps if s.proposal.to_level == level}

    @property
    def de_escalations(self) -> list[ReplayStep]:
        return [s for s in self.steps if s.proposal.kind == "de_escalate"]


class AssumedPlans:
    """The plans the replay assumes, per unit and track (see the module docstring).

    ``since`` is the month whose review moved the track (``first`` until it moves);
    ``targets`` the measures the plan of the track's last escalation targets.
    """

    def __init__(self, first: date) -> None:
        self.first = first
        self.since: dict[str, dict[str, date]] = {}
        self.targets: dict[str, dict[str, set[str]]] = {}

    def since_of(self, unit_code: str, track: str) -> date:
        return self.since.get(unit_code, {}).get(track, self.first)

    def apply(self, data: UnitInput, period: date) -> UnitInput:
        """``data`` with the assumed plans and the months its levels were reached."""
        framework = get_framework(data.framework)
        since = {track: self.since_of(data.code, track) for track in data.levels}
        plans = []
        for track, level in data.levels.items():
            if level == framework.initial_level(track):
                continue
            months_in = _month_index(period) - _month_index(since[track])
            if months_in < 1:
                continue
            targeted = self.targets.get(data.code, {}).get(track, set())
            met = 0
            for index in range(_month_index(period), _month_index(since[track]), -1):
                month = _month(index)
                ok = bool(targeted)
                for measure in data.measures:
                    if measure.code in targeted:
                        point = next((p for p in measure.series if p.period == month), None)
                        if point is None or point.actual is None or rag(measure, point) == "red":
                            ok = False
                if not ok:
                    break
                met += 1
            plans.append(
                PlanInput(
                    track=track,
                    approved_on=_month(_month_index(since[track]) + 1),
                    actions_delivered=months_in >= ACTIONS_DELIVERED_AFTER,
                    trajectory_met_months=met,
                )
            )
        return replace(data, level_since=since, plans=tuple(plans))

    def moved(
        self,
        unit_code: str,
        track: str,
        kind: str,
        period: date,
        evaluation: UnitEvaluation | None,
    ) -> None:
        """Record that ``track`` moved on the review of ``period``; an escalation's plan
        targets the measures red or showing special-cause concern in that evaluation."""
        self.since.setdefault(unit_code, {})[track] = period
        if kind == "escalate" and evaluation is not None:
            self.targets.setdefault(unit_code, {})[track] = {
                m.code
                for m in evaluation.measures
                if m.rag_by_period.get(period) == "red"
                or (m.spc and any(s.kind == "concern" for s in m.spc.signals))
            }


def replay(units: list[Unit], first: date, last: date) -> Replay:
    """Replay every month from ``first`` to ``last`` (firsts of months) for ``units``."""
    result = Replay()
    plans = AssumedPlans(first)
    levels: dict[str, dict[str, str]] = {}
    for unit in units:
        framework = get_framework(unit.framework)
        tracks = [t.name for t in framework.tracks.values() if not t.per_measure]
        levels[unit.code] = {t: framework.initial_level(t) for t in tracks}
    for index in range(_month_index(first), _month_index(last) + 1):
        period = _month(index)
        for unit in units:
            mine = levels[unit.code]
            data = plans.apply(replace(unit_input(unit, period), levels=dict(mine)), period)
            evaluation = evaluate_unit(data, period, get_framework(unit.framework))
            for proposal in evaluation.proposals:
                if proposal.track not in mine:
                    continue
                mine[proposal.track] = proposal.to_level
                plans.moved(unit.code, proposal.track, proposal.kind, period, evaluation)
                result.steps.append(ReplayStep(period, unit.code, proposal))
    result.levels = {code: dict(tracks) for code, tracks in levels.items()}
    return result


def review_with_assumed_plans(
    period: date,
    plans: AssumedPlans,
    *,
    now: datetime,
    actor: Person | None = None,
) -> ReviewOutcome:
    """The monthly review of ``period`` (``review.run_review``) with the assumed plans.

    Evaluates every active unit at its stored levels and stores the proposals as pending
    decisions, as the monthly review does. Whoever decides them should call
    ``plans.moved(...)`` for each approved one, so later months assume its plan.
    Flushes only; the caller commits.
    """
    outcome = ReviewOutcome(period)
    units = db.session.scalars(
        sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
    ).all()
    for unit in units:
        framework = get_framework(unit.framework)
        evaluation = evaluate_unit(plans.apply(unit_input(unit, period), period), period, framework)
        outcome.evaluations.append(evaluation)
        store_proposals(unit, evaluation, period, outcome, now)
        outcome.units += 1
    record_event(
        "review.run",
        object_type="review",
        object_id=f"{period:%Y-%m}",
        summary=f"Escalation review for {period:%B %Y} (replayed with assumed recovery plans): "
        f"{outcome.units} units, {len(outcome.created)} new proposals",
        actor=actor,
        details={"assumed_plans": True, "reviewed_at": now.isoformat()},
    )
    return outcome
