"""Plans in delivery: monthly updates, the trajectory against the actuals, failing plans.

Decisions (docs/decisions/0017-plan-delivery-and-failing-plans.md):

* **Monthly updates.** One update per action and month (on track / at risk / off track, with a
  narrative; a narrative is required when an action is at risk or off track). The unit's lead,
  its budget holder and the action's owner may record it. A second submission for the same
  month *edits* the update (audited with the old and the new text) until the monthly review of
  that month has run; after that the month is closed and the edit is refused with a message
  naming the month to report on instead. The same form marks an action delivered.
* **Trajectory.** Each month of a targeted measure (a measure with planned values in the plan,
  or linked to one of its actions) is compared with its *bar*: the plan's planned value for the
  month, else the measure's own (local) trajectory value, else its (national) target; met when
  the latest revision of the actual is at least the bar (higher is better) or at most it (lower
  is better). A month of the plan is met when every targeted measure with data met its bar and
  missed when one did not; a month with no data neither counts nor breaks a run (DOMAIN.md
  decision 4). Months are judged after the approval month, as the evaluation does.
* **Failing.** The monthly review (:func:`assess_plans`, run by ``services.review.run_review``
  before it evaluates) marks a plan in delivery *failing* when it has missed its trajectory for
  one month fewer than the framework's ``plan_trajectory_missed`` escalation threshold (iqpf and
  NHS Wales: 3, so failing after 2), so the people responsible hear of it before escalation is
  proposed. Where the case's level has ``review_period_if_plan_failing`` (iqpf 2b: 2 months) it
  sets the review period at once: it ends with the last day of the Nth month after the reviewed
  month, and a deadline "Follow-up review of the failing plan" falls due on the day the review of
  that month runs. While the period runs the evaluation does not propose escalation on the plan;
  from the review of its last month, a plan still failing makes the framework's trigger
  (``recovery_failing``: Level 3) propose escalation through the normal proposal path. A plan
  whose latest judged month meets its trajectory goes back in delivery (its follow-up deadline
  is cancelled).
* **Completion is a person's act** (:func:`complete_plan`): the performance team or an
  executive completes a plan in delivery once every action is delivered. The engine never
  completes a plan; a completed plan with its actions delivered feeds the framework's
  de-escalation trigger (``plan_actions_delivered`` and ``measures_on_trajectory``).
* The monthly review only moves plans for the newest month reviewed: re-running an older
  month (revised data) re-evaluates it but leaves plans where the newest month put them.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from state_machines import get_framework, parse_duration
from state_machines.framework import Framework
from state_machines.plan_review import IllegalPlanTransition
from workflow_app.clock import to_london, today_london, utcnow
from workflow_app.evaluation import MonthCountRules, PlanInput
from workflow_app.evaluation.rules import add_months, month_start
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import Measure, TrajectoryValue
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Person, Unit
from workflow_app.models.plans import (
    UPDATE_STATUSES,
    PlanAction,
    PlanActionUpdate,
    RecoveryPlan,
)
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM
from workflow_app.permissions import can_view_unit
from workflow_app.services.audit import record_event
from workflow_app.services.deadlines import calendar_for, cancel_deadline, create_deadline
from workflow_app.services.errors import ServiceError, require
from workflow_app.services.plan_states import move_plan

__all__ = [
    "ActionEntry",
    "MeasureTrajectory",
    "PlanAssessment",
    "PlanTrajectory",
    "TrajectoryMonth",
    "UpdateProblems",
    "assess_plans",
    "can_complete_plan",
    "can_record_updates",
    "can_view_plan",
    "complete_plan",
    "current_plan",
    "financial_year_months",
    "financial_year_start",
    "months_to_failing",
    "open_update_months",
    "plan_input_for_case",
    "plan_trajectory",
    "plans_for_review",
    "record_update",
    "record_updates",
    "review_has_run",
    "review_period_for",
    "updatable_actions",
]

#: Plans that take monthly updates.
UPDATABLE_STATUSES = ("approved", "in_delivery", "failing", "review_period")
#: Plans the monthly review judges against their trajectory.
DELIVERY_STATUSES = ("in_delivery", "failing", "review_period")
#: Plans the evaluation sees as the plan of their track.
COUNTED_STATUSES = ("approved", "in_delivery", "failing", "review_period", "completed")
NARRATIVE_MAX = 4000
# The plan's risk levels (models/plans.py RISK_LEVELS) in the evaluation's severity words.
RISK_TO_SEVERITY = {"low": "low", "moderate": "moderate", "high": "high", "severe": "serious"}
FOLLOW_UP_KIND = "plan_follow_up_review"


# --------------------------------------------------------------------------------------------
# Months
# --------------------------------------------------------------------------------------------


def last_day(month: date) -> date:
    """The last day of ``month``'s month."""
    return month.replace(day=_calendar.monthrange(month.year, month.month)[1])


def financial_year_start(period: date) -> date:
    """1 April of the financial year (April to March) ``period`` falls in."""
    return date(period.year if period.month >= 4 else period.year - 1, 4, 1)


def financial_year_months(start: date) -> list[date]:
    """The twelve months April to March from ``start`` (a 1 April)."""
    return [add_months(start, n) for n in range(12)]


def _months(first: date, last: date) -> list[date]:
    out, month = [], month_start(first)
    while month <= last:
        out.append(month)
        month = add_months(month, 1)
    return out


def approval_month(plan: RecoveryPlan) -> date | None:
    """The month (London time) the plan was approved, or None."""
    approved = to_london(plan.approved_at)
    return month_start(approved.date()) if approved is not None else None


def reviewed_months() -> set[date]:
    """Months whose monthly review has run: scheduled, by hand or replayed (the review's
    proposals and job runs, and its ``review.run`` audit events)."""
    from workflow_app.services.review import reviewed_periods

    months = set(reviewed_periods())
    for key in db.session.scalars(
        sa.select(AuditEvent.object_id).where(AuditEvent.action == "review.run").distinct()
    ):
        try:
            months.add(datetime.strptime(key, "%Y-%m").date())
        except ValueError:
            continue
    return months


def review_has_run(period: date) -> bool:
    """True once the monthly review of ``period`` has run."""
    return period in reviewed_months()


# --------------------------------------------------------------------------------------------
# Who may do what
# --------------------------------------------------------------------------------------------


def _signed_in(person: Person | None) -> bool:
    return person is not None and getattr(person, "is_authenticated", False)


def _owns_an_action(person: Person, plan: RecoveryPlan) -> bool:
    return any(action.owner_id == person.id for action in plan.actions)


def can_view_plan(person: Person | None, plan: RecoveryPlan) -> bool:
    """Whoever may see the unit, and the owners of the plan's actions."""
    if not _signed_in(person):
        return False
    return can_view_unit(person, plan.unit) or _owns_an_action(person, plan)


def _leads(person: Person, plan: RecoveryPlan) -> bool:
    return person.id in (plan.unit.lead_id, plan.unit.budget_holder_id)


def can_record_updates(person: Person | None, plan: RecoveryPlan) -> bool:
    """The unit's lead and budget holder (every action) and each action's owner (theirs)."""
    if not _signed_in(person):
        return False
    return _leads(person, plan) or _owns_an_action(person, plan)


def updatable_actions(person: Person | None, plan: RecoveryPlan) -> list[PlanAction]:
    """The actions ``person`` may report on."""
    if not _signed_in(person):
        return []
    if _leads(person, plan):
        return list(plan.actions)
    return [a for a in plan.actions if a.owner_id == person.id]


def can_complete_plan(person: Person | None) -> bool:
    """Completing a plan is a judgement for the performance team or an executive."""
    return _signed_in(person) and person.has_role(PERFORMANCE_TEAM, CEO, EXECUTIVE_DIRECTOR)


# --------------------------------------------------------------------------------------------
# Monthly updates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionEntry:
    """What a person sent for one action: a status, a narrative and, optionally, delivered."""

    status: str
    narrative: str = ""
    delivered: bool | None = None  # None: leave as it is


class UpdateProblems(ServiceError):
    """Some entries of a monthly update are wrong; ``problems`` maps action id -> message.

    Nothing is stored when this is raised.
    """

    def __init__(self, problems: dict[int, str], message: str | None = None) -> None:
        self.problems = problems
        super().__init__(message or "; ".join(problems.values()))


def open_update_months(plan: RecoveryPlan, today: date | None = None) -> list[date]:
    """Months a plan can still be reported on: last month and this month, from the approval
    month on, whose review has not run. The first one is the month to report on."""
    today = today or today_london()
    first = approval_month(plan)
    if first is None or plan.status not in UPDATABLE_STATUSES:
        return []
    this_month = month_start(today)
    candidates = [add_months(this_month, -1), this_month]
    return [m for m in candidates if m >= first and not review_has_run(m)]


def _month_words(period: date) -> str:
    return period.strftime("%B %Y")


def _check_period(plan: RecoveryPlan, period: date, today: date) -> None:
    if period != month_start(period):
        raise ServiceError("Report on a whole month.")
    first = approval_month(plan)
    if first is None or plan.status not in UPDATABLE_STATUSES:
        raise ServiceError(
            "Monthly updates open once the plan is approved; this plan is "
            f"{plan.status.replace('_', ' ')}."
        )
    if period < first:
        raise ServiceError(
            f"The plan was approved in {_month_words(first)}, so updates start from that month."
        )
    if period > month_start(today):
        raise ServiceError(f"{_month_words(period)} has not started yet.")
    if review_has_run(period):
        later = [m for m in open_update_months(plan, today) if m > period]
        hint = f" Report on {_month_words(later[0])} instead." if later else ""
        raise ServiceError(
            f"The monthly review of {_month_words(period)} has already run, so updates for "
            f"that month can no longer be recorded or changed.{hint}"
        )


def entry_problem(action: PlanAction, entry: ActionEntry) -> str | None:
    """What is wrong with one action's entry, in words for the person, or None."""
    name = f"action {action.position + 1}" if action.position is not None else "this action"
    if entry.status not in UPDATE_STATUSES:
        return f"Choose on track, at risk or off track for {name}"
    narrative = entry.narrative.strip()
    if entry.status in ("at_risk", "off_track") and not narrative:
        return f"Say why {name} is {UPDATE_STATUSES[entry.status].lower()} and what is being done"
    if len(narrative) > NARRATIVE_MAX:
        return f"The narrative for {name} must be {NARRATIVE_MAX:,} characters or fewer"
    return None


def record_update(
    actor: Person,
    action: PlanAction,
    period: date,
    status: str,
    narrative: str = "",
    *,
    delivered: bool | None = None,
    now: datetime | None = None,
) -> PlanActionUpdate:
    """Record (or edit, until the month's review has run) one action's update for ``period``.

    :raises PermissionDenied: ``actor`` is not the unit's lead or budget holder or the action's
        owner.
    :raises ServiceError: the month is closed or not open yet, or the status / narrative is
        wrong; nothing is changed.
    """
    (saved,) = record_updates(
        actor,
        action.plan,
        period,
        {action.id: ActionEntry(status, narrative, delivered)},
        now=now,
    )
    return saved


def record_updates(
    actor: Person,
    plan: RecoveryPlan,
    period: date,
    entries: dict[int, ActionEntry],
    *,
    now: datetime | None = None,
) -> list[PlanActionUpdate]:
    """Record the monthly update of several actions of ``plan`` at once: all or nothing.

    :raises UpdateProblems: one or more entries are wrong (by action id); nothing is stored.
    """
    now = now or utcnow()
    today = to_london(now).date()
    require(
        can_record_updates(actor, plan),
        "Only the unit's lead, its budget holder or an action's owner can report on this plan.",
    )
    allowed = {a.id: a for a in updatable_actions(actor, plan)}
    for action_id in entries:
        if action_id not in {a.id for a in plan.actions}:
            raise ServiceError("That action is not part of this plan.")
        require(action_id in allowed, "You can only report on the actions you own.")
    _check_period(plan, period, today)
    problems = {
        action_id: problem
        for action_id, entry in entries.items()
        if (problem := entry_problem(allowed[action_id], entry)) is not None
    }
    if problems:
        raise UpdateProblems(problems)
    saved = []
    for action_id, entry in entries.items():
        saved.append(_store(actor, allowed[action_id], period, entry, now, today))
    db.session.flush()
    return saved


def _store(
    actor: Person,
    action: PlanAction,
    period: date,
    entry: ActionEntry,
    now: datetime,
    today: date,
) -> PlanActionUpdate:
    plan = action.plan
    narrative = entry.narrative.strip()
    update = db.session.scalar(
        sa.select(PlanActionUpdate).where(
            PlanActionUpdate.action_id == action.id, PlanActionUpdate.period == period
        )
    )
    label = f"{plan.unit.name}: {plan.title}, action {action.position + 1}, {period:%b %Y}"
    delivered_before = action.delivered_on
    if entry.delivered is True and action.delivered_on is None:
        action.delivered_on = today
    elif entry.delivered is False and action.delivered_on is not None:
        action.delivered_on = None
    delivered_changed = action.delivered_on != delivered_before
    details = {
        "action": action.id,
        "period": f"{period:%Y-%m}",
        "status": entry.status,
        "narrative": narrative,
    }
    if delivered_changed:
        details["delivered_on"] = action.delivered_on.isoformat() if action.delivered_on else None
    if update is None:
        update = PlanActionUpdate(
            action=action,
            period=period,
            status=entry.status,
            narrative=narrative,
            updated_by_id=actor.id,
            updated_at=now,
        )
        db.session.add(update)
        db.session.flush()
        record_event(
            "plan.update_recorded",
            object_type="plan",
            object_id=plan.id,
            summary=f"{label}: {UPDATE_STATUSES[entry.status].lower()}"
            + ("; delivered" if delivered_changed and action.delivered_on else ""),
            actor=actor,
            details=details,
        )
        return update
    if update.status == entry.status and update.narrative == narrative and not delivered_changed:
        return update  # nothing changed: nothing to record
    details["before"] = {"status": update.status, "narrative": update.narrative}
    update.status = entry.status
    update.narrative = narrative
    update.updated_by_id = actor.id
    update.updated_at = now
    record_event(
        "plan.update_edited",
        object_type="plan",
        object_id=plan.id,
        summary=f"{label} edited: {UPDATE_STATUSES[details['before']['status']].lower()} -> "
        f"{UPDATE_STATUSES[entry.status].lower()}"
        + (
            "; delivered"
            if delivered_changed and action.delivered_on
            else "; no longer delivered"
            if delivered_changed
            else ""
        ),
        actor=actor,
        details=details,
    )
    return update


def latest_update(action: PlanAction) -> PlanActionUpdate | None:
    """The action's most recent monthly update."""
    return action.updates[-1] if action.updates else None


# --------------------------------------------------------------------------------------------
# Trajectory: plan against actual
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryMonth:
    """One month of one targeted measure.

    ``bar`` is what the actual is judged against: the plan's planned value, else the measure's
    local trajectory value, else its national target (``bar_kind``: plan, local, national).
    ``met`` is None without an actual. ``judged``: the month counts for the plan's status
    (after the approval month, up to the month judged).
    """

    period: date
    planned: float | None
    actual: float | None
    local_target: float | None
    national_target: float
    bar: float
    bar_kind: str
    met: bool | None
    judged: bool


@dataclass(frozen=True)
class MeasureTrajectory:
    """A targeted measure of a plan, month by month."""

    measure: Measure
    months: tuple[TrajectoryMonth, ...]

    @property
    def national_target(self) -> float:
        return float(self.measure.target)

    @property
    def direction(self) -> str:
        return self.measure.direction

    def month(self, period: date) -> TrajectoryMonth | None:
        return next((m for m in self.months if m.period == period), None)


@dataclass(frozen=True)
class PlanTrajectory:
    """A plan's trajectory against the actuals.

    ``months``: the months shown (``measures[i].months`` follow them). ``judged``: (month, met)
    for every judged month with data, oldest first, over all targeted measures.
    """

    months: tuple[date, ...]
    measures: tuple[MeasureTrajectory, ...]
    judged: tuple[tuple[date, bool], ...]
    until: date | None
    approved: bool = True

    @property
    def met_months(self) -> int:
        """Consecutive months on trajectory, to the latest judged month."""
        count = 0
        for _, met in reversed(self.judged):
            if not met:
                break
            count += 1
        return count

    @property
    def missed_run(self) -> list[date]:
        """The months of the current run of missed months (oldest first)."""
        run: list[date] = []
        for period, met in reversed(self.judged):
            if met:
                break
            run.insert(0, period)
        return run

    @property
    def latest(self) -> tuple[date, bool] | None:
        return self.judged[-1] if self.judged else None

    @property
    def summary(self) -> str:
        """One line for people: where the plan stands against its trajectory."""
        if not self.approved:
            return "The plan is judged against its trajectory once it is approved."
        if not self.measures:
            return "The plan targets no measure, so its trajectory cannot be judged."
        if not self.judged:
            return "No month since the plan was approved has data yet."
        run = self.missed_run
        if run:
            months = ", ".join(m.strftime("%b %Y") for m in run)
            return (
                f"Missed its trajectory for {len(run)} consecutive month"
                f"{'' if len(run) == 1 else 's'} ({months})."
            )
        latest = self.judged[-1][0]
        return (
            f"On trajectory for {self.met_months} consecutive month"
            f"{'' if self.met_months == 1 else 's'}, to {latest:%B %Y}."
        )


def targeted_measures(plan: RecoveryPlan) -> list[Measure]:
    """The measures a plan targets: those with planned values, and those its actions move."""
    by_id: dict[int, Measure] = {}
    for point in plan.trajectory:
        by_id.setdefault(point.measure_id, point.measure)
    for action in plan.actions:
        if action.measure_id is not None and action.measure is not None:
            by_id.setdefault(action.measure_id, action.measure)
    return sorted(by_id.values(), key=lambda m: m.code)


def _meets(value: float, bar: float, direction: str) -> bool:
    return value >= bar if direction == "higher_is_better" else value <= bar


def plan_trajectory(
    plan: RecoveryPlan,
    *,
    months: Iterable[date] | None = None,
    until: date | None = None,
) -> PlanTrajectory:
    """Compare ``plan``'s trajectory with the actuals (latest revisions).

    ``months``: the months to show (default: from the approval month, or the first planned
    month, to the last planned month or ``until``). ``until``: the last month judged (default:
    last month, London time).
    """
    from workflow_app.services.review import latest_actuals

    until = until or add_months(month_start(today_london()), -1)
    measures = targeted_measures(plan)
    planned = {(p.measure_id, p.period): float(p.planned_value) for p in plan.trajectory}
    approved = approval_month(plan)
    if months is None:
        starts = [m for m in (approved, min((p for _, p in planned), default=None)) if m]
        first = min(starts) if starts else until
        last = max([until, *(p for _, p in planned)])
        shown = _months(first, last)
    else:
        shown = sorted({month_start(m) for m in months})
    judge = _months(add_months(approved, 1), until) if approved is not None else []
    every = sorted(set(shown) | set(judge))
    if not measures or not every:
        return PlanTrajectory(tuple(shown), (), (), until, approved is not None)
    ids = [m.id for m in measures]
    actuals = latest_actuals(ids, every[0], every[-1])
    local = {
        (t.measure_id, t.period): float(t.value)
        for t in db.session.scalars(
            sa.select(TrajectoryValue).where(
                TrajectoryValue.measure_id.in_(ids),
                TrajectoryValue.period.between(every[0], every[-1]),
            )
        )
    }
    judged_set = set(judge)

    def month_of(measure: Measure, period: date) -> TrajectoryMonth:
        plan_value = planned.get((measure.id, period))
        local_value = local.get((measure.id, period))
        national = float(measure.target)
        if plan_value is not None:
            bar, kind = plan_value, "plan"
        elif local_value is not None:
            bar, kind = local_value, "local"
        else:
            bar, kind = national, "national"
        actual = actuals.get((measure.id, period))
        return TrajectoryMonth(
            period=period,
            planned=plan_value,
            actual=actual,
            local_target=local_value,
            national_target=national,
            bar=bar,
            bar_kind=kind,
            met=None if actual is None else _meets(actual, bar, measure.direction),
            judged=period in judged_set,
        )

    rows = tuple(
        MeasureTrajectory(measure, tuple(month_of(measure, p) for p in shown))
        for measure in measures
    )
    judged = []
    for period in judge:
        results = [month_of(m, period).met for m in measures]
        results = [r for r in results if r is not None]
        if results:  # a month with no data neither counts nor breaks the run
            judged.append((period, all(results)))
    return PlanTrajectory(tuple(shown), rows, tuple(judged), until, approved is not None)


# --------------------------------------------------------------------------------------------
# What the monthly review sees
# --------------------------------------------------------------------------------------------


def current_plan(case: EscalationCase, period: date) -> RecoveryPlan | None:
    """The plan of ``case`` as of ``period``: the newest plan approved by then that is not
    withdrawn (a completed one only if completed since the case reached its level)."""
    plans = db.session.scalars(
        sa.select(RecoveryPlan)
        .where(
            RecoveryPlan.case_id == case.id,
            RecoveryPlan.status.in_(COUNTED_STATUSES),
            RecoveryPlan.approved_at.is_not(None),
        )
        .order_by(RecoveryPlan.approved_at.desc(), RecoveryPlan.id.desc())
    ).all()
    for plan in plans:
        if approval_month(plan) > period:
            continue
        if plan.status == "completed" and (
            plan.completed_at is None or to_london(plan.completed_at) < to_london(case.level_since)
        ):
            continue
        return plan
    return None


def plan_input_for_case(
    case: EscalationCase, period: date, plan: RecoveryPlan | None = None
) -> PlanInput | None:
    """The evaluation's view of the case's plan for ``period`` (None without one)."""
    plan = plan or current_plan(case, period)
    if plan is None:
        return None
    trajectory = plan_trajectory(plan, months=(), until=period)
    end = last_day(period)
    delivered = plan.status == "completed" or (
        bool(plan.actions)
        and all(a.delivered_on is not None and a.delivered_on <= end for a in plan.actions)
    )
    return PlanInput(
        track=case.track,
        approved_on=to_london(plan.approved_at).date(),
        actions_delivered=delivered,
        trajectory_met_months=trajectory.met_months,
        risk_level=RISK_TO_SEVERITY.get(plan.risk_level or ""),
        measure_codes=tuple(m.measure.code for m in trajectory.measures),
        review_period_ends_on=plan.review_period_ends_on
        if plan.status == "review_period"
        else None,
    )


def plans_for_review(
    unit: Unit, start: date, period: date
) -> tuple[tuple[PlanInput, ...], dict[tuple[int, date], float]]:
    """The plans of ``unit``'s cases for the review of ``period``, and the planned values
    they set between ``start`` and ``period`` by (measure id, month): the evaluation takes a
    plan's planned value as the measure's trajectory for that month (the agreed improvement
    trajectory: seed 001 section 8, amber; DOMAIN.md decision 3)."""
    cases = db.session.scalars(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.framework == unit.framework
        )
    ).all()
    inputs: list[PlanInput] = []
    planned: dict[tuple[int, date], float] = {}
    for case in sorted(cases, key=lambda c: c.track):
        plan = current_plan(case, period)
        if plan is None:
            continue
        plan_input = plan_input_for_case(case, period, plan)
        if plan_input is not None:
            inputs.append(plan_input)
        for point in plan.trajectory:
            if start <= point.period <= period:
                planned[(point.measure_id, point.period)] = float(point.planned_value)
    return tuple(inputs), planned


# --------------------------------------------------------------------------------------------
# Failing plans and review periods
# --------------------------------------------------------------------------------------------


def months_to_failing(framework: Framework) -> int:
    """Consecutive missed months after which a plan is failing: one fewer than the smallest
    ``plan_trajectory_missed`` threshold of the framework's triggers (default: the month-count
    rules' escalation threshold), and at least 1."""
    thresholds = [
        int(cond.get("months_at_least", 1))
        for trigger in framework.triggers
        for mode in ("when_any", "when_all")
        for cond in trigger.get(mode) or []
        if isinstance(cond, dict) and cond.get("signal") == "plan_trajectory_missed"
    ]
    escalate = min(thresholds) if thresholds else MonthCountRules().escalate_months
    return max(1, escalate - 1)


def review_period_for(framework: Framework, level: str) -> str | None:
    """The framework's ``review_period_if_plan_failing`` for a case at ``level`` (e.g.
    "2 months" at iqpf 2b), or None."""
    consequences = framework.consequences or {}
    spec = (consequences.get("on_enter") or {}).get(level)
    if spec is None:
        spec = consequences.get("on_escalation") or {}
    value = spec.get("review_period_if_plan_failing") if isinstance(spec, dict) else None
    return str(value) if value else None


def review_period_end(period: date, duration: str) -> date:
    """The last day of a review period of ``duration`` set at the review of ``period``."""
    length = parse_duration(duration)
    if length.unit == "months":
        return last_day(add_months(period, length.amount))
    if length.unit == "years":
        return last_day(add_months(period, 12 * length.amount))
    days = length.amount * (7 if length.unit == "weeks" else 1)
    if length.unit == "working_days":
        days = round(length.amount * 7 / 5)
    return last_day(last_day(period) + timedelta(days=days))


def follow_up_due_at(framework: Framework, ends_on: date) -> datetime:
    """When the follow-up review of a failing plan falls due: the day the monthly review of
    the review period's last month runs, at the calendar's due time."""
    working = calendar_for(framework.name)
    after = parse_duration(framework.monthly_returns["review_after"]).amount
    day = working.month_end_plus_working_days(ends_on.year, ends_on.month, after)
    return working.at_local_time(day, working.due_time)


@dataclass
class PlanAssessment:
    """What the monthly review did to one plan."""

    plan: RecoveryPlan
    events: list[str] = field(default_factory=list)
    note: str = ""
    deadline: Deadline | None = None


def _missed_words(run: list[date]) -> str:
    months = ", ".join(m.strftime("%b %Y") for m in run)
    plural = "s" if len(run) > 1 else ""
    return f"missed its trajectory for {len(run)} consecutive month{plural} ({months})"


def _set_review_period(
    plan: RecoveryPlan, framework: Framework, duration: str, period: date, now: datetime
) -> Deadline:
    ends_on = review_period_end(period, duration)
    plan.review_period_ends_on = ends_on
    move_plan(
        plan,
        "set_review_period",
        actor=None,
        now=now,
        note=f"review period of {duration} to {ends_on:%d %B %Y} (framework: "
        f"review period if the plan is failing)",
    )
    unit = plan.unit
    deadline = create_deadline(
        dedupe_key=f"{FOLLOW_UP_KIND}:{plan.id}:{ends_on:%Y-%m}",
        kind=FOLLOW_UP_KIND,
        title=f"Follow-up review of the failing plan: {plan.title}"[:300],
        unit=unit,
        framework=framework.name,
        case=plan.case,
        owner=unit.accountable_executive or unit.lead,
        due_at=follow_up_due_at(framework, ends_on),
    )
    # DOMAIN.md decision 9: the review period ends in a follow-up review meeting.
    from workflow_app.services.meetings import propose_follow_up_meeting

    meeting = propose_follow_up_meeting(plan, now=now)
    if meeting.deadline_id is None:
        meeting.deadline = deadline
    return deadline


def _back_on_track(plan: RecoveryPlan, latest: date, now: datetime) -> None:
    move_plan(
        plan,
        "back_on_track",
        actor=None,
        now=now,
        note=f"met its trajectory in {latest:%B %Y}",
    )
    plan.review_period_ends_on = None
    follow_ups = db.session.scalars(
        sa.select(Deadline).where(
            Deadline.kind == FOLLOW_UP_KIND,
            Deadline.dedupe_key.like(f"{FOLLOW_UP_KIND}:{plan.id}:%"),
            Deadline.status.in_(("open", "paused")),
        )
    ).all()
    for deadline in follow_ups:
        cancel_deadline(deadline, "the plan is back on its trajectory")
    # A follow-up meeting nobody has scheduled yet is no longer needed; a scheduled one is
    # left to its chair (cancelling it sends calendar cancellations in their name).
    for meeting in db.session.scalars(
        sa.select(Meeting).where(
            Meeting.kind == "follow_up_review",
            Meeting.dedupe_key.like(f"plan:{plan.id}:follow_up:%"),
            Meeting.status == "requested",
        )
    ):
        meeting.status = "cancelled"
        meeting.cancelled_reason = f"The plan met its trajectory in {latest:%B %Y}"


def assess_plans(
    period: date,
    *,
    now: datetime | None = None,
    units: list[Unit] | None = None,
) -> list[PlanAssessment]:
    """Judge every plan in delivery against its trajectory for the review of ``period``.

    Starts delivery of approved plans, marks failing plans, sets review periods with their
    follow-up deadline and puts plans back in delivery (see the module docstring). Does
    nothing for a month older than the newest month reviewed. Flushes only.
    """
    now = now or utcnow()
    if any(month > period for month in reviewed_months()):
        return []
    query = (
        sa.select(RecoveryPlan)
        .join(Unit, Unit.id == RecoveryPlan.unit_id)
        .where(
            RecoveryPlan.status.in_(("approved", *DELIVERY_STATUSES)),
            RecoveryPlan.approved_at.is_not(None),
            Unit.is_active.is_(True),
        )
        .order_by(RecoveryPlan.id)
    )
    if units is not None:
        query = query.where(RecoveryPlan.unit_id.in_([u.id for u in units]))
    done = []
    for plan in db.session.scalars(query).all():
        assessment = PlanAssessment(plan)
        if plan.status == "approved":
            move_plan(
                plan,
                "start_delivery",
                actor=None,
                now=now,
                note=f"delivery started at the monthly review of {period:%B %Y}",
            )
            assessment.events.append("start_delivery")
        first = approval_month(plan)
        if first is None or first >= period:
            if assessment.events:
                done.append(assessment)
            continue
        framework = get_framework(plan.case.framework)
        trajectory = plan_trajectory(plan, months=(), until=period)
        run = trajectory.missed_run
        latest_month = trajectory.latest
        duration = review_period_for(framework, plan.case.level)
        if plan.status == "in_delivery" and len(run) >= months_to_failing(framework):
            assessment.note = f"The plan has {_missed_words(run)}"
            move_plan(plan, "mark_failing", actor=None, now=now, note=_missed_words(run))
            assessment.events.append("mark_failing")
            if duration:
                assessment.deadline = _set_review_period(plan, framework, duration, period, now)
                assessment.events.append("set_review_period")
        elif plan.status in ("failing", "review_period") and latest_month and not run:
            assessment.note = f"The plan met its trajectory in {latest_month[0]:%B %Y}"
            _back_on_track(plan, latest_month[0], now)
            assessment.events.append("back_on_track")
        elif plan.status == "failing" and duration:
            assessment.deadline = _set_review_period(plan, framework, duration, period, now)
            assessment.events.append("set_review_period")
        if assessment.events:
            done.append(assessment)
    db.session.flush()
    return done


# --------------------------------------------------------------------------------------------
# Completing a plan
# --------------------------------------------------------------------------------------------


def complete_plan(
    actor: Person, plan: RecoveryPlan, *, note: str = "", now: datetime | None = None
) -> None:
    """Complete a plan in delivery whose actions are all delivered (a person's judgement).

    :raises PermissionDenied: not the performance team or an executive.
    :raises ServiceError: an action is not delivered, or the plan is not in delivery.
    """
    now = now or utcnow()
    require(
        can_complete_plan(actor),
        "Only the performance team or an executive can complete a plan.",
    )
    if plan.status != "in_delivery":
        raise ServiceError(str(IllegalPlanTransition(plan.status, "complete")))
    open_actions = [a for a in plan.actions if a.delivered_on is None]
    if not plan.actions or open_actions:
        names = ", ".join(str(a.position + 1) for a in open_actions)
        raise ServiceError(
            "The plan cannot be completed until every action is delivered"
            + (f" (not delivered: action {names})." if names else ".")
        )
    move_plan(plan, "complete", actor=actor, now=now, note=note.strip())
    plan.completed_at = now
    db.session.flush()
