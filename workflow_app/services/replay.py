"""Replaying the framework over past months: what would it have proposed, month by month?

Used to check a framework file (or the demo data) tells a believable story before relying on
it. Each month every unit is evaluated with the levels the replay has reached so far, and
every proposal is taken as approved. Plans are not yet recorded in the database (the
recovery plans issue), so the replay assumes one: approved the month after the escalation,
targeting the measures that were red or showing special-cause concern when it fired, its
actions delivered after ``ACTIONS_DELIVERED_AFTER`` months, and its trajectory met while
every targeted measure is green or amber. Nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from state_machines import get_framework
from workflow_app.evaluation import PlanInput, ProposalDraft, UnitInput, evaluate_unit, rag
from workflow_app.models.org import Unit
from workflow_app.services.review import unit_input

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


def _assumed_plans(data: UnitInput, period: date, levels, since, targets) -> tuple[PlanInput, ...]:
    plans = []
    for track, level in levels.items():
        framework = get_framework(data.framework)
        if level == framework.initial_level(track):
            continue
        months_in = _month_index(period) - _month_index(since[track])
        if months_in < 1:
            continue
        targeted = targets.get(track, set())
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
    return tuple(plans)


def replay(units: list[Unit], first: date, last: date) -> Replay:
    """Replay every month from ``first`` to ``last`` (firsts of months) for ``units``."""
    result = Replay()
    state: dict[str, dict] = {}
    for unit in units:
        framework = get_framework(unit.framework)
        tracks = [t.name for t in framework.tracks.values() if not t.per_measure]
        state[unit.code] = {
            "levels": {t: framework.initial_level(t) for t in tracks},
            "since": {t: first for t in tracks},
            "targets": {},
        }
    for index in range(_month_index(first), _month_index(last) + 1):
        period = _month(index)
        for unit in units:
            mine = state[unit.code]
            data = unit_input(unit, period)
            plans = _assumed_plans(data, period, mine["levels"], mine["since"], mine["targets"])
            data = replace(
                data, levels=dict(mine["levels"]), level_since=dict(mine["since"]), plans=plans
            )
            evaluation = evaluate_unit(data, period, get_framework(unit.framework))
            for proposal in evaluation.proposals:
                if proposal.track not in mine["levels"]:
                    continue
                if proposal.kind == "escalate":
                    mine["targets"][proposal.track] = {
                        m.code
                        for m in evaluation.measures
                        if m.rag_by_period.get(period) == "red"
                        or (m.spc and any(s.kind == "concern" for s in m.spc.signals))
                    }
                mine["levels"][proposal.track] = proposal.to_level
                mine["since"][proposal.track] = period
                result.steps.append(ReplayStep(period, unit.code, proposal))
    result.levels = {code: dict(s["levels"]) for code, s in state.items()}
    return result
