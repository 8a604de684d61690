"""Writing and reviewing recovery / improvement plans: one function per user intent.

A decision whose consequences ask for a plan creates a ``*_plan_due`` deadline on the case
(``recovery_plan_due``, ``improvement_plan_due``, ``action_plan_due``). The unit's lead starts
the plan (:func:`start_plan`), saves the working copy as often as they like
(:func:`save_draft`, optimistic lock), and submits it when it passes the SMART check
(:func:`check_smart`, :func:`submit`): the working copy is frozen into a hashed
:class:`~workflow_app.models.plans.PlanVersion`, the plan-due deadline is met, and a review
deadline goes to the reviewer. A reviewer opens it (:func:`start_review`), then returns it with
comments per action (:func:`return_for_changes`, which gives the lead a resubmission deadline)
or approves it (:func:`approve`, which puts it in delivery in the same transaction).
:func:`plan_diff` shows a reviewer what changed between two versions.

Every status change goes through :func:`workflow_app.services.plan_states.move_plan`, so an
illegal move is refused with the review-cycle machine's message before anything changes.
Services only flush; the caller commits (``unit_of_work.transaction``). Review periods and
deadlines are explained in ``docs/decisions/0016-plan-review-cycle.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from state_machines import Framework, get_framework
from state_machines.plan_review import OPEN_STATUSES, STATUS_TITLES, IllegalPlanTransition
from state_machines.plan_review import next_status as machine_next_status
from workflow_app.clock import to_london, today_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import Measure
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.plans import (
    PLAN_KINDS,
    RISK_LEVELS,
    PlanAction,
    PlanReviewComment,
    PlanStatusChange,
    PlanTrajectoryPoint,
    PlanVersion,
    RecoveryPlan,
)
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.permissions import can_manage_units, can_view_unit
from workflow_app.services.audit import canonical_json, record_event
from workflow_app.services.deadlines import cancel_deadline, create_deadline, mark_done
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.org import people_with_role
from workflow_app.services.plan_states import move_plan

__all__ = [
    "ACTION_FIELDS",
    "EDITABLE_STATUSES",
    "PLAN_DUE_KINDS",
    "PLAN_FIELDS",
    "RESUBMIT_WORKING_DAYS",
    "REVIEW_WORKING_DAYS",
    "ActionDiff",
    "PlanDiff",
    "PlanNotSmart",
    "TextChange",
    "TrajectoryChange",
    "approve",
    "can_review_plan",
    "can_view_plan",
    "can_withdraw_plan",
    "can_write_plan",
    "changed_since_message",
    "check_smart",
    "financial_year_months",
    "live_plan_due_deadline",
    "open_plan_for_case",
    "plan_data",
    "plan_diff",
    "plan_snapshot",
    "return_for_changes",
    "review_refusal",
    "save_draft",
    "smart_words",
    "start_plan",
    "start_review",
    "submit",
    "version_content",
    "version_intact",
    "withdraw",
    "word_diff",
]

#: The deadline kinds a decision creates when it asks for a plan, and the plan each asks for.
PLAN_DUE_KINDS: dict[str, str] = {
    "recovery_plan_due": "recovery_plan",
    "improvement_plan_due": "improvement_plan",
    "action_plan_due": "action_plan",
}
#: Working days a reviewer has to review a submitted version (docs/decisions/0016).
REVIEW_WORKING_DAYS = 5
#: Working days the lead has to resubmit a plan returned with comments.
RESUBMIT_WORKING_DAYS = 5
REVIEW_DEADLINE_KIND = "plan_review_due"
RESUBMIT_DEADLINE_KIND = "plan_resubmission_due"
EDITABLE_STATUSES = ("draft", "returned")

#: The plan's own text fields (the working copy), in the order a reader meets them.
PLAN_FIELDS: dict[str, str] = {
    "summary": "Summary",
    "risk_assessment": "Risk assessment",
    "risk_level": "Risk to quality and safety",
    "support_requested": "Support requested",
    "headlines": "Headlines",
    "narrative": "Narrative",
    "queries": "Queries and escalations",
}
#: An action's fields; ``measure_id``, ``owner_id`` and ``domain_id`` are ids in the data.
ACTION_FIELDS: dict[str, str] = {
    "description": "What will be done",
    "measure_id": "Measure it moves",
    "expected_effect": "By how much",
    "owner_id": "Owner",
    "resources": "Resources",
    "domain_id": "Domain it serves",
    "deliverable": "Key deliverable",
    "due_on": "Due date",
    "milestones": "Milestones",
}
_TEXT_ACTION_FIELDS = ("description", "expected_effect", "resources", "deliverable", "milestones")

DEFAULT_SMART_LABELS = ("specific", "measurable", "achievable", "relevant", "time_bound")
_SMART_TITLES = {
    "specific": "Specific",
    "measurable": "Measurable",
    "achievable": "Achievable",
    "agreed": "Agreed",
    "relevant": "Relevant",
    "realistic": "Realistic",
    "time_bound": "Time-bound",
}
_SMART_ROLES = ("specific", "measurable", "achievable", "relevant", "time_bound")


class PlanNotSmart(ServiceError):
    """The plan does not pass the SMART check; ``errors`` says what is missing, per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        count = len(self.errors)
        super().__init__(
            f"The plan cannot be submitted yet: {count} thing{'s' if count != 1 else ''} "
            "to put right. " + " ".join(self.errors.values())
        )


# --- who may do what ------------------------------------------------------------------------


def _signed_in(person: Person | None) -> bool:
    return person is not None and getattr(person, "is_authenticated", False)


def can_view_plan(person: Person | None, plan: RecoveryPlan) -> bool:
    """Whoever may see the unit may read its plans (others get 404)."""
    return can_view_unit(person, plan.unit)


def can_write_plan(person: Person | None, plan_or_unit: RecoveryPlan | Unit) -> bool:
    """The unit's lead and budget holder, and people who maintain units (performance team)."""
    unit = plan_or_unit.unit if isinstance(plan_or_unit, RecoveryPlan) else plan_or_unit
    if not _signed_in(person):
        return False
    return person.id in (unit.lead_id, unit.budget_holder_id) or can_manage_units(person)


#: Roles that review any unit's plan; a unit's accountable executive reviews its plans too.
REVIEWER_ROLES = (PERFORMANCE_TEAM, CEO, EXECUTIVE_DIRECTOR)


def _is_reviewer(person: Person | None, unit: Unit) -> bool:
    if not _signed_in(person):
        return False
    if person.has_role(*REVIEWER_ROLES):
        return True
    return unit.accountable_executive_id == person.id


def _latest_version(plan: RecoveryPlan) -> PlanVersion | None:
    return plan.versions[-1] if plan.versions else None


def review_refusal(person: Person | None, plan: RecoveryPlan) -> str | None:
    """Why ``person`` may not review ``plan``'s current version, or None when they may."""
    if not _is_reviewer(person, plan.unit):
        return (
            "Only the performance team, the unit's accountable executive, the Chief Executive "
            "or an executive director can review a plan."
        )
    version = _latest_version(plan)
    if version is not None and version.submitted_by_id == person.id:
        return "You submitted this version of the plan, so someone else must review it."
    return None


def can_review_plan(person: Person | None, plan: RecoveryPlan) -> bool:
    """Reviewers: performance team, the unit's accountable executive, CEO, executive directors;
    never the person who submitted the version under review."""
    return review_refusal(person, plan) is None


def can_withdraw_plan(person: Person | None, plan: RecoveryPlan) -> bool:
    """Those who write the plan, and those who review plans."""
    return can_write_plan(person, plan) or _is_reviewer(person, plan.unit)


def _require_writer(actor: Person, plan_or_unit: RecoveryPlan | Unit) -> None:
    unit = plan_or_unit.unit if isinstance(plan_or_unit, RecoveryPlan) else plan_or_unit
    if not can_write_plan(actor, unit):
        raise PermissionDenied(
            f"Only {unit.name}'s lead or budget holder, or the performance team, can write "
            "and submit its plan."
        )


def _require_reviewer(actor: Person, plan: RecoveryPlan) -> None:
    refusal = review_refusal(actor, plan)
    if refusal:
        raise PermissionDenied(refusal)


def _check_move(plan: RecoveryPlan, event: str) -> None:
    """Raise the machine's message (as ServiceError) if ``event`` is illegal; change nothing."""
    try:
        machine_next_status(plan.status, event)
    except IllegalPlanTransition as illegal:
        raise ServiceError(str(illegal)) from None


# --- SMART wording ----------------------------------------------------------------------------


def smart_words(framework: Framework | str | None) -> dict[str, str]:
    """The five SMART words in the framework's spelling, keyed by what each letter checks.

    ``{"specific": "Specific", "measurable": "Measurable", "achievable": "Agreed",
    "relevant": "Realistic", "time_bound": "Time-bound"}`` for the system tiers framework.
    """
    if isinstance(framework, str):
        framework = get_framework(framework)
    labels = tuple(getattr(framework, "smart_labels", ()) or ()) or DEFAULT_SMART_LABELS
    return {
        role: _SMART_TITLES.get(word, word.replace("_", "-").capitalize())
        for role, word in zip(_SMART_ROLES, labels, strict=True)
    }


# --- the working copy as data -----------------------------------------------------------------


def financial_year_months(day: date) -> list[date]:
    """The twelve months (first days) of the financial year, April to March, holding ``day``."""
    start_year = day.year if day.month >= 4 else day.year - 1
    return [date(start_year + (m >= 13), (m - 1) % 12 + 1, 1) for m in range(4, 16)]


def _number_text(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def plan_data(plan: RecoveryPlan) -> dict[str, Any]:
    """The working copy in the shape :func:`save_draft` and :func:`check_smart` take."""
    return {
        **{
            name: getattr(plan, name) or ("" if name != "risk_level" else None)
            for name in PLAN_FIELDS
        },
        "actions": [
            {
                "id": action.id,
                **{name: getattr(action, name) for name in ACTION_FIELDS},
            }
            for action in plan.actions
        ],
        "trajectory": [
            {
                "measure_id": point.measure_id,
                "period": point.period,
                "planned_value": Decimal(point.planned_value),
            }
            for point in plan.trajectory
        ],
    }


def _clean_text(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").strip()


def _optional_id(value: Any) -> int | None:
    if value in (None, "", "None"):
        return None
    return int(value)


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check types and tidy text; raise ServiceError for anything a form could not send."""
    out: dict[str, Any] = {}
    for name in PLAN_FIELDS:
        if name == "risk_level":
            level = data.get("risk_level") or None
            if level is not None and level not in RISK_LEVELS:
                raise ServiceError(f"Choose the risk level from: {', '.join(RISK_LEVELS)}")
            out[name] = level
        else:
            out[name] = _clean_text(data.get(name))
    actions = []
    for raw in data.get("actions") or []:
        action: dict[str, Any] = {"id": _optional_id(raw.get("id"))}
        for name in _TEXT_ACTION_FIELDS:
            action[name] = _clean_text(raw.get(name))
        for name in ("measure_id", "owner_id", "domain_id"):
            action[name] = _optional_id(raw.get(name))
        due = raw.get("due_on")
        if due is not None and not isinstance(due, date):
            raise ServiceError("An action's due date must be a date")
        action["due_on"] = due
        actions.append(action)
    out["actions"] = actions
    points: dict[tuple[int, date], Decimal] = {}
    for raw in data.get("trajectory") or []:
        value = raw.get("planned_value")
        if value is None or value == "":
            continue
        try:
            value = Decimal(str(value))
        except InvalidOperation:
            raise ServiceError("A planned value in the trajectory is not a number") from None
        period = raw["period"]
        if not isinstance(period, date):
            raise ServiceError("A trajectory month must be a date")
        points[(int(raw["measure_id"]), period.replace(day=1))] = value
    out["trajectory"] = [
        {"measure_id": m, "period": p, "planned_value": v} for (m, p), v in sorted(points.items())
    ]
    return out


# --- starting a plan --------------------------------------------------------------------------


def open_plan_for_case(case: EscalationCase) -> RecoveryPlan | None:
    """The case's plan that is still open (not completed or withdrawn), if any."""
    return db.session.scalar(
        sa.select(RecoveryPlan)
        .where(RecoveryPlan.case_id == case.id, RecoveryPlan.status.in_(OPEN_STATUSES))
        .order_by(RecoveryPlan.id.desc())
        .limit(1)
    )


def live_plan_due_deadline(case: EscalationCase) -> Deadline | None:
    """The case's open (or paused) "plan due" obligation, the earliest first."""
    return db.session.scalar(
        sa.select(Deadline)
        .where(
            Deadline.case_id == case.id,
            Deadline.kind.in_(tuple(PLAN_DUE_KINDS)),
            Deadline.status.in_(("open", "paused")),
        )
        .order_by(Deadline.due_at, Deadline.id)
        .limit(1)
    )


def _decision_of(deadline: Deadline) -> Decision | None:
    match = re.fullmatch(r"decision:(\d+):.*", deadline.dedupe_key)
    return db.session.get(Decision, int(match.group(1))) if match else None


def start_plan(actor: Person, case: EscalationCase, *, now: datetime | None = None) -> RecoveryPlan:
    """Start the draft plan a case's "plan due" deadline asks for; one open plan per case.

    A second start returns the plan already open. The draft is linked to the deadline and to
    the decision that created it, and takes its kind from the deadline's kind.

    :raises PermissionDenied: the actor may not write the unit's plans.
    :raises ServiceError: no plan is due on this case.
    """
    now = now or utcnow()
    _require_writer(actor, case.unit)
    existing = open_plan_for_case(case)
    if existing is not None:
        return existing
    deadline = live_plan_due_deadline(case)
    if deadline is None:
        raise ServiceError(
            f"No plan is due on this case: {case.unit.name} has no open recovery, improvement "
            "or action plan deadline. A plan is asked for by a decision (for example an "
            "escalation to Level 2a)."
        )
    framework = get_framework(case.framework)
    kind = PLAN_DUE_KINDS[deadline.kind]
    decision = _decision_of(deadline)
    plan = RecoveryPlan(
        case=case,
        case_id=case.id,
        unit=case.unit,
        unit_id=case.unit_id,
        decision_id=decision.id if decision else None,
        due_deadline_id=deadline.id,
        kind=kind,
        title=f"{PLAN_KINDS[kind]}: {case.unit.name} "
        f"({framework.track_for(case.track).title}, {framework.level_title(case.level)})",
        status="draft",
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(plan)
    db.session.flush()
    db.session.add(
        PlanStatusChange(
            plan=plan,
            event="start",
            from_status=None,
            to_status="draft",
            actor_id=actor.id,
            changed_at=now,
        )
    )
    record_event(
        "plan.started",
        object_type="plan",
        object_id=plan.id,
        summary=f"{actor.name} started the {PLAN_KINDS[kind].lower()} for {case.unit.name}",
        actor=actor,
        details={"case_id": case.id, "deadline_id": deadline.id, "kind": kind},
    )
    return plan


# --- saving the working copy ------------------------------------------------------------------


def _last_change(plan: RecoveryPlan) -> tuple[str, datetime | None]:
    event = db.session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.object_type == "plan", AuditEvent.object_id == str(plan.id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return "someone else", plan.updated_at
    return (event.actor.name if event.actor else "the system"), event.occurred_at


def changed_since_message(plan: RecoveryPlan) -> str:
    """The Conflict message: who changed the plan last, and when."""
    who, when = _last_change(plan)
    local = to_london(when) if when else None
    at = f" at {local:%H:%M on %d %b %Y}" if local else ""
    return f"This plan was changed by {who}{at} since you opened it, so nothing you sent was saved."


def _check_references(plan: RecoveryPlan, data: dict[str, Any]) -> None:
    unit_measures = set(
        db.session.scalars(sa.select(Measure.id).where(Measure.unit_id == plan.unit_id))
    )
    for n, action in enumerate(data["actions"], start=1):
        if action["measure_id"] is not None and action["measure_id"] not in unit_measures:
            raise ServiceError(f"Action {n}'s measure is not one of {plan.unit.name}'s measures")
        if action["owner_id"] is not None and db.session.get(Person, action["owner_id"]) is None:
            raise ServiceError(f"Action {n}'s owner is not a person in Escalate")
        if action["domain_id"] is not None and db.session.get(Domain, action["domain_id"]) is None:
            raise ServiceError(f"Action {n}'s domain does not exist")
    for point in data["trajectory"]:
        if point["measure_id"] not in unit_measures:
            raise ServiceError(
                f"The trajectory names a measure that is not one of {plan.unit.name}'s measures"
            )


def save_draft(
    actor: Person,
    plan: RecoveryPlan,
    data: Mapping[str, Any],
    expected_lock_version: int | None,
    *,
    now: datetime | None = None,
) -> RecoveryPlan:
    """Store the working copy: plan fields, actions (added, removed, reordered) and trajectory.

    ``data`` is shaped like :func:`plan_data`: actions in their new order, each with the
    ``id`` of the action it updates (None for a new one; a missing id removes that action);
    trajectory points ``{measure_id, period, planned_value}`` replace the plan's. A draft need
    not pass the SMART check.

    :raises Conflict: the plan changed since the caller read ``expected_lock_version``.
    :raises ServiceError: the plan is not a draft or returned; data no form could send.
    """
    now = now or utcnow()
    _require_writer(actor, plan)
    if plan.status not in EDITABLE_STATUSES:
        raise ServiceError(
            f"The plan is {STATUS_TITLES[plan.status].lower()}; it can be changed only while it "
            "is a draft or has been returned with comments."
        )
    if expected_lock_version is not None and int(expected_lock_version) != plan.lock_version:
        raise Conflict(changed_since_message(plan))
    clean = _normalise(data)
    _check_references(plan, clean)
    before = plan_data(plan)

    for name in PLAN_FIELDS:
        setattr(plan, name, clean[name])

    existing = {action.id: action for action in plan.actions}
    kept: list[PlanAction] = []
    for position, values in enumerate(clean["actions"]):
        action = existing.get(values["id"]) if values["id"] is not None else None
        if action is None:
            action = PlanAction(plan_id=plan.id)
        action.position = position
        for name in ACTION_FIELDS:
            setattr(action, name, values[name])
        kept.append(action)
    removed = [a.id for a in plan.actions if a not in kept]
    if removed:
        # Comments on an action the lead has removed stay with their version (their ``field``
        # keeps "action:<id>", which the version's snapshot names); only the link goes.
        db.session.execute(
            sa.update(PlanReviewComment)
            .where(PlanReviewComment.action_id.in_(removed))
            .values(action_id=None)
            .execution_options(synchronize_session=False)
        )
    plan.actions = kept  # removed actions are deleted (delete-orphan)

    points = {(p.measure_id, p.period): p for p in plan.trajectory}
    wanted = {(p["measure_id"], p["period"]): p["planned_value"] for p in clean["trajectory"]}
    for key, point in points.items():
        if key not in wanted:
            plan.trajectory.remove(point)
    for (measure_id, period), value in wanted.items():
        point = points.get((measure_id, period))
        if point is None:
            plan.trajectory.append(
                PlanTrajectoryPoint(measure_id=measure_id, period=period, planned_value=value)
            )
        elif Decimal(point.planned_value) != value:
            point.planned_value = value

    plan.updated_at = now  # always an UPDATE, so the lock version moves on every save
    db.session.flush()
    after = plan_data(plan)
    changed = [name for name in PLAN_FIELDS if before[name] != after[name]]
    record_event(
        "plan.draft_saved",
        object_type="plan",
        object_id=plan.id,
        summary=f"{actor.name} saved the draft of {plan.title}: {len(kept)} action"
        f"{'s' if len(kept) != 1 else ''}, {len(wanted)} planned value"
        f"{'s' if len(wanted) != 1 else ''}",
        actor=actor,
        details={
            "changed_fields": changed,
            "actions": len(kept),
            "removed_actions": removed,
            "trajectory_points": len(wanted),
        },
    )
    return plan


# --- the SMART check --------------------------------------------------------------------------


def _end_of_next_financial_year(today: date) -> date:
    start_year = today.year if today.month >= 4 else today.year - 1
    return date(start_year + 2, 3, 31)


def _measure_label(measure: Measure | None) -> str:
    return f"{measure.code} ({measure.name})" if measure is not None else "the measure"


def check_smart(
    plan_or_data: RecoveryPlan | Mapping[str, Any],
    framework: Framework | str | None = None,
    *,
    unit: Unit | None = None,
    today: date | None = None,
) -> dict[str, str]:
    """What stops the plan being submitted, keyed by field, in the framework's SMART spelling.

    Keys are ``summary``, ``risk_assessment``, ``risk_level``, ``actions`` (no action at all),
    ``actions-<i>-<field>`` (``i`` counts from 0; the message says "Action i+1") and
    ``trajectory-<measure_id>``. An empty dict means the plan passes.

    The plan needs a summary, a risk assessment with its level, at least one action, and a
    planned value for at least one month of every measure an action moves. Each action is
    Specific (what will be done), Measurable (the unit's measure it moves and by how much),
    Achievable / Agreed (owner and resources), Relevant / Realistic (the domain it serves) and
    Time-bound (a due date after today, no later than the end of the next financial year;
    milestones are optional).
    """
    if isinstance(plan_or_data, RecoveryPlan):
        plan = plan_or_data
        data = plan_data(plan)
        unit = unit or plan.unit
        framework = framework or plan.case.framework
    else:
        data = _normalise(plan_or_data)
    words = smart_words(framework)
    today = today or today_london()
    horizon = _end_of_next_financial_year(today)
    unit_measures: dict[int, Measure] = {}
    if unit is not None:
        unit_measures = {
            m.id: m
            for m in db.session.scalars(sa.select(Measure).where(Measure.unit_id == unit.id))
        }
    errors: dict[str, str] = {}
    if not data["summary"]:
        errors["summary"] = "Write a summary of the plan"
    if not data["risk_assessment"]:
        errors["risk_assessment"] = (
            "Write the risk assessment: the risks to quality and safety and how they are managed"
        )
    if not data.get("risk_level"):
        errors["risk_level"] = "Choose the level of risk to quality and safety"
    if not data["actions"]:
        errors["actions"] = "Add at least one action"

    targeted: dict[int, int] = {}  # measure id -> first action number moving it
    for index, action in enumerate(data["actions"]):
        n = index + 1
        key = f"actions-{index}-"
        s, m, a, r, t = (words[role] for role in _SMART_ROLES)
        if not action["description"]:
            errors[key + "description"] = f"Action {n} is not {s}: say what will be done"
        measure_id = action["measure_id"]
        measure = unit_measures.get(measure_id) if measure_id is not None else None
        if measure_id is None and not action["expected_effect"]:
            errors[key + "measure_id"] = (
                f"Action {n} is not {m}: choose the measure it moves and say by how much"
            )
        elif measure_id is None:
            errors[key + "measure_id"] = f"Action {n} is not {m}: choose the measure it moves"
        elif unit is not None and measure is None:
            errors[key + "measure_id"] = (
                f"Action {n} is not {m}: choose one of {unit.name}'s measures"
            )
        elif not action["expected_effect"]:
            errors[key + "expected_effect"] = (
                f"Action {n} is not {m}: say by how much it will move {_measure_label(measure)}"
            )
        if measure_id is not None and (unit is None or measure is not None):
            targeted.setdefault(measure_id, n)
        if action["owner_id"] is None:
            errors[key + "owner_id"] = f"Action {n} is not {a}: name the owner who will deliver it"
        if not action["resources"]:
            errors[key + "resources"] = (
                f"Action {n} is not {a}: say what resources it needs (people, money, time)"
            )
        if action["domain_id"] is None:
            errors[key + "domain_id"] = f"Action {n} is not {r}: choose the domain it serves"
        due = action["due_on"]
        if due is None:
            errors[key + "due_on"] = f"Action {n} is not {t}: give a due date"
        elif due <= today:
            errors[key + "due_on"] = f"Action {n} is not {t}: the due date must be after today"
        elif due > horizon:
            errors[key + "due_on"] = (
                f"Action {n} is not {t}: the due date must be no later than "
                f"{horizon.day} {horizon:%B %Y}, the end of the next financial year"
            )

    planned = {point["measure_id"] for point in data["trajectory"]}
    for measure_id, n in targeted.items():
        if measure_id not in planned:
            measure = unit_measures.get(measure_id) or db.session.get(Measure, measure_id)
            errors[f"trajectory-{measure_id}"] = (
                f"Give at least one planned value for {_measure_label(measure)} in the "
                f"trajectory: action {n} moves it"
            )
    return errors


# --- versions ---------------------------------------------------------------------------------


def _person_ref(person: Person | None) -> dict[str, Any] | None:
    return {"id": person.id, "name": person.name} if person is not None else None


def plan_snapshot(plan: RecoveryPlan) -> dict[str, Any]:
    """The working copy as plain JSON data, with names beside ids so a version reads alone."""
    measures = {
        m.id: m
        for m in db.session.scalars(sa.select(Measure).where(Measure.unit_id == plan.unit_id))
    }

    def named(model, ident):
        # By id, not through the relationship: an attribute loaded before this transaction
        # changed the id would still hold the old object.
        return db.session.get(model, ident) if ident is not None else None

    actions = []
    for position, action in enumerate(plan.actions):
        measure = measures.get(action.measure_id) if action.measure_id is not None else None
        owner = named(Person, action.owner_id)
        domain = named(Domain, action.domain_id)
        actions.append(
            {
                "id": action.id,
                "number": position + 1,
                "description": action.description,
                "measure": {"id": measure.id, "code": measure.code, "name": measure.name}
                if measure
                else None,
                "expected_effect": action.expected_effect,
                "owner": _person_ref(owner),
                "resources": action.resources,
                "domain": {"id": domain.id, "code": domain.code, "name": domain.name}
                if domain
                else None,
                "deliverable": action.deliverable,
                "due_on": action.due_on.isoformat() if action.due_on else None,
                "milestones": action.milestones,
            }
        )
    return {
        "plan": {
            "id": plan.id,
            "kind": plan.kind,
            "title": plan.title,
            "case_id": plan.case_id,
            "unit": {"id": plan.unit.id, "code": plan.unit.code, "name": plan.unit.name},
        },
        "smart_labels": list(smart_words(plan.case.framework).values()),
        "fields": {name: getattr(plan, name) or "" for name in PLAN_FIELDS},
        "actions": actions,
        "trajectory": [
            {
                "measure_id": point.measure_id,
                "measure_code": measures[point.measure_id].code
                if point.measure_id in measures
                else str(point.measure_id),
                "period": point.period.strftime("%Y-%m"),
                "planned_value": _number_text(point.planned_value),
            }
            for point in sorted(plan.trajectory, key=lambda p: (p.measure_id, p.period))
        ],
    }


def version_content(version: PlanVersion) -> dict[str, Any]:
    """A version's frozen snapshot as data."""
    return json.loads(version.content)


def version_intact(version: PlanVersion) -> bool:
    """True when the stored content still matches the hash taken when it was submitted."""
    return hashlib.sha256(version.content.encode("utf-8")).hexdigest() == version.content_sha256


def _review_owner(unit: Unit) -> Person | None:
    """Who owns a review deadline: the accountable executive, else a performance team member."""
    if unit.accountable_executive is not None:
        return unit.accountable_executive
    team = people_with_role(PERFORMANCE_TEAM)
    return team[0] if team else None


def _plan_deadline(plan: RecoveryPlan, version: int, what: str) -> Deadline | None:
    return db.session.scalar(
        sa.select(Deadline).where(Deadline.dedupe_key == f"plan:{plan.id}:v{version}:{what}")
    )


def _kind_title(plan: RecoveryPlan) -> str:
    return PLAN_KINDS.get(plan.kind, "Plan")


def _mail(plan: RecoveryPlan, people, *, event: str, subject: str, template: str, **context):
    """E-mail ``people`` (each once, enabled only) about ``event`` on the current version.

    Every caller fires ``event`` once per version in this transaction (submitting inserts the
    version, unique per plan and number; returning and approving move it out of review under
    the plan's version counter), so no message with these keys can exist yet: no look-up or
    flush per message. The outbox's unique key still stops a duplicate.
    """
    seen: set[int] = set()
    for person in people:
        if person is None or person.id in seen or not person.is_enabled:
            continue
        seen.add(person.id)
        queue_email(
            kind=f"plan_{event}",
            dedupe_key=f"plan:{plan.id}:v{plan.current_version}:{event}:{person.id}",
            recipient=person,
            subject=subject,
            template=template,
            link=absolute_url(f"/plans/{plan.id}"),
            plan=plan,
            kind_title=_kind_title(plan),
            known_new=True,
            **context,
        )


def submit(actor: Person, plan: RecoveryPlan, *, now: datetime | None = None) -> PlanVersion:
    """Submit the working copy for review: SMART-checked, frozen, hashed, sent to reviewers.

    The first submission meets the plan-due deadline; a resubmission meets the resubmission
    deadline. A review deadline (``plan_review_due``, :data:`REVIEW_WORKING_DAYS` working days)
    goes to the unit's accountable executive (else the performance team), and the reviewers
    are e-mailed.

    :raises ServiceError: the review cycle does not allow submitting from here (the machine's
        message).
    :raises PlanNotSmart: the plan does not pass :func:`check_smart` (``errors`` per field).
    """
    now = now or utcnow()
    _require_writer(actor, plan)
    _check_move(plan, "submit")
    errors = check_smart(plan, plan.case.framework, today=to_london(now).date())
    if errors:
        raise PlanNotSmart(errors)
    number = plan.current_version + 1
    content = canonical_json(plan_snapshot(plan))
    version = PlanVersion(
        plan_id=plan.id,
        number=number,
        content=content,
        content_sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        submitted_by_id=actor.id,
        submitted_at=now,
    )
    plan.versions.append(version)
    plan.current_version = number
    plan.submitted_at = now
    move_plan(plan, "submit", actor=actor, now=now, note=f"version {number}")
    db.session.flush()
    if number == 1 and plan.due_deadline is not None:
        mark_done(plan.due_deadline, by=actor, note=f"{_kind_title(plan)} submitted", at=now)
    previous = _plan_deadline(plan, number - 1, "resubmit") if number > 1 else None
    if previous is not None:
        mark_done(previous, by=actor, note=f"version {number} submitted", at=now)
    owner = _review_owner(plan.unit)
    review_deadline = create_deadline(
        dedupe_key=f"plan:{plan.id}:v{number}:review",
        kind=REVIEW_DEADLINE_KIND,
        title=f"Review the {_kind_title(plan).lower()} (version {number})",
        unit=plan.unit,
        framework=plan.case.framework,
        case=plan.case,
        owner=owner,
        working_days=REVIEW_WORKING_DAYS,
        starting=now,
        actor=actor,
        now=now,
    )
    record_event(
        "plan.version_submitted",
        object_type="plan",
        object_id=plan.id,
        summary=f"{actor.name} submitted version {number} of {plan.title}",
        actor=actor,
        details={"version": number, "sha256": version.content_sha256},
    )
    reviewers = [owner, *people_with_role(PERFORMANCE_TEAM)]
    _mail(
        plan,
        [p for p in reviewers if p is not None and p.id != actor.id],
        event="submitted",
        subject=f"{plan.unit.name}: {_kind_title(plan).lower()} version {number} to review",
        template="plan_submitted",
        version=version,
        submitted_by=actor,
        review_due=to_london(review_deadline.due_at),
    )
    return version


# --- reviewing --------------------------------------------------------------------------------


def start_review(reviewer: Person, plan: RecoveryPlan, *, now: datetime | None = None) -> None:
    """A reviewer opens the submitted version: submitted -> in review.

    :raises PermissionDenied: not a reviewer, or the person who submitted this version.
    :raises ServiceError: the plan is not waiting for review (the machine's message).
    """
    now = now or utcnow()
    _require_reviewer(reviewer, plan)
    _check_move(plan, "start_review")
    move_plan(plan, "start_review", actor=reviewer, now=now, note=f"version {plan.current_version}")


def _begin_review_if_needed(
    reviewer: Person, plan: RecoveryPlan, event: str, now: datetime
) -> None:
    """Returning or approving straight from "submitted" records the review's start first."""
    if plan.status == "submitted":
        start_review(reviewer, plan, now=now)
    _check_move(plan, event)


def _version_action_ids(version: PlanVersion) -> dict[int, int]:
    """action id -> its number in the version."""
    return {a["id"]: a["number"] for a in version_content(version)["actions"]}


def return_for_changes(
    reviewer: Person,
    plan: RecoveryPlan,
    overall_note: str,
    comments: Mapping[int, str] | None = None,
    *,
    now: datetime | None = None,
) -> PlanVersion:
    """Return the version under review with comments: overall, and per action (by action id).

    At least one comment is needed. The review deadline is met; the lead gets a resubmission
    deadline (:data:`RESUBMIT_WORKING_DAYS` working days) and an e-mail with the comments.

    :raises PermissionDenied: not a reviewer, or the submitter of this version.
    :raises ServiceError: the machine's message for an illegal move; no comment; a comment
        on an action that is not in the version.
    """
    now = now or utcnow()
    _require_reviewer(reviewer, plan)
    _check_move(plan, "start_review" if plan.status == "submitted" else "return_for_changes")
    version = _latest_version(plan)
    overall = _clean_text(overall_note)
    numbers = _version_action_ids(version)
    per_action = {}
    for action_id, text in (comments or {}).items():
        text = _clean_text(text)
        if not text:
            continue
        if int(action_id) not in numbers:
            raise ServiceError("That comment is on an action that is not in this version")
        per_action[int(action_id)] = text
    if not overall and not per_action:
        raise ServiceError(
            "Write what needs to change: a comment on the plan as a whole, on an action, or both"
        )
    _begin_review_if_needed(reviewer, plan, "return_for_changes", now)
    live_actions = {a.id for a in plan.actions}
    for action_id, text in sorted(per_action.items(), key=lambda item: numbers[item[0]]):
        db.session.add(
            PlanReviewComment(
                version=version,
                action_id=action_id if action_id in live_actions else None,
                field=f"action:{action_id}",
                comment=text,
                author_id=reviewer.id,
                created_at=now,
            )
        )
    version.outcome = "returned"
    version.outcome_note = overall
    version.reviewed_by_id = reviewer.id
    version.reviewed_at = now
    move_plan(plan, "return_for_changes", actor=reviewer, now=now, note=overall[:500])
    db.session.flush()
    review_deadline = _plan_deadline(plan, version.number, "review")
    if review_deadline is not None:
        mark_done(review_deadline, by=reviewer, note="returned with comments", at=now)
    lead = plan.unit.lead or version.submitted_by
    resubmit = create_deadline(
        dedupe_key=f"plan:{plan.id}:v{version.number}:resubmit",
        kind=RESUBMIT_DEADLINE_KIND,
        title=f"Resubmit the {_kind_title(plan).lower()} with the changes asked for",
        unit=plan.unit,
        framework=plan.case.framework,
        case=plan.case,
        owner=lead,
        working_days=RESUBMIT_WORKING_DAYS,
        starting=now,
        actor=reviewer,
        now=now,
    )
    record_event(
        "plan.returned",
        object_type="plan",
        object_id=plan.id,
        summary=f"{reviewer.name} returned version {version.number} of {plan.title} with "
        f"{len(per_action)} comment{'s' if len(per_action) != 1 else ''} on actions",
        actor=reviewer,
        details={"version": version.number, "overall": overall, "comments": per_action},
    )
    by_number = {a["id"]: a for a in version_content(version)["actions"]}
    _mail(
        plan,
        [plan.unit.lead, version.submitted_by],
        event="returned",
        subject=f"{plan.unit.name}: {_kind_title(plan).lower()} returned with comments",
        template="plan_returned",
        version=version,
        reviewer=reviewer,
        overall=overall,
        action_comments=[
            (by_number[action_id], text)
            for action_id, text in sorted(per_action.items(), key=lambda i: numbers[i[0]])
        ],
        resubmit_due=to_london(resubmit.due_at),
    )
    return version


def approve(
    reviewer: Person, plan: RecoveryPlan, note: str = "", *, now: datetime | None = None
) -> PlanVersion:
    """Approve the version under review and put the plan in delivery, in one transaction.

    Records who approved and when, meets the review deadline and tells the lead.

    :raises PermissionDenied: not a reviewer, or the submitter of this version.
    :raises ServiceError: the machine's message for an illegal move.
    """
    now = now or utcnow()
    _require_reviewer(reviewer, plan)
    _check_move(plan, "start_review" if plan.status == "submitted" else "approve")
    _begin_review_if_needed(reviewer, plan, "approve", now)
    note = _clean_text(note)
    version = _latest_version(plan)
    version.outcome = "approved"
    version.outcome_note = note
    version.reviewed_by_id = reviewer.id
    version.reviewed_at = now
    move_plan(plan, "approve", actor=reviewer, now=now, note=note[:500])
    plan.approved_at = now
    plan.approved_by_id = reviewer.id
    move_plan(plan, "start_delivery", actor=reviewer, now=now, note="approved")
    db.session.flush()
    review_deadline = _plan_deadline(plan, version.number, "review")
    if review_deadline is not None:
        mark_done(review_deadline, by=reviewer, note="approved", at=now)
    record_event(
        "plan.approved",
        object_type="plan",
        object_id=plan.id,
        summary=f"{reviewer.name} approved version {version.number} of {plan.title}; "
        "it is now in delivery",
        actor=reviewer,
        details={"version": version.number, "note": note, "sha256": version.content_sha256},
    )
    _mail(
        plan,
        [plan.unit.lead, version.submitted_by, plan.unit.accountable_executive],
        event="approved",
        subject=f"{plan.unit.name}: {_kind_title(plan).lower()} approved",
        template="plan_approved",
        version=version,
        reviewer=reviewer,
        note=note,
    )
    return version


def withdraw(
    actor: Person, plan: RecoveryPlan, reason: str, *, now: datetime | None = None
) -> None:
    """Withdraw an open plan (a de-escalation or a replacement makes it moot), with a reason.

    Its own review and resubmission deadlines are cancelled; the case's plan-due deadline is
    left as it is, so if no version was ever submitted the obligation still stands.
    """
    now = now or utcnow()
    if not can_withdraw_plan(actor, plan):
        raise PermissionDenied("You cannot withdraw this plan")
    _check_move(plan, "withdraw")
    reason = _clean_text(reason)
    if not reason:
        raise ServiceError("Give the reason for withdrawing the plan")
    move_plan(plan, "withdraw", actor=actor, now=now, note=reason[:500])
    for deadline in db.session.scalars(
        sa.select(Deadline).where(
            Deadline.dedupe_key.like(f"plan:{plan.id}:v%"),
            Deadline.status.in_(("open", "paused")),
        )
    ):
        cancel_deadline(deadline, f"plan withdrawn: {reason}", actor=actor)


# --- differences between versions -------------------------------------------------------------


@dataclass(frozen=True)
class TextChange:
    """One field that differs: old and new text and a word-level diff.

    ``words`` is a sequence of ``(op, text)`` with op ``equal``, ``delete`` or ``insert``.
    """

    field: str
    label: str
    old: str
    new: str
    words: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ActionDiff:
    """One action across two versions: ``added``, ``removed``, ``changed`` or ``unchanged``."""

    action_id: int | None
    number_before: int | None
    number_after: int | None
    change: str
    description: str
    fields: tuple[TextChange, ...] = ()

    @property
    def moved(self) -> bool:
        return (
            self.number_before is not None
            and self.number_after is not None
            and self.number_before != self.number_after
        )


@dataclass(frozen=True)
class TrajectoryChange:
    """A planned value added, removed or changed for one measure and month."""

    measure: str
    period: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class PlanDiff:
    """What changed from version ``before`` to version ``after``."""

    before: int | None
    after: int | None
    fields: tuple[TextChange, ...] = ()
    actions: tuple[ActionDiff, ...] = ()
    trajectory: tuple[TrajectoryChange, ...] = field(default_factory=tuple)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.fields
            or self.trajectory
            or any(a.change != "unchanged" or a.moved for a in self.actions)
        )


_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """Word-level differences between two texts (difflib), spaces kept."""
    a, b = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(a[i1:i2])))
        else:
            if i2 > i1:
                out.append(("delete", "".join(a[i1:i2])))
            if j2 > j1:
                out.append(("insert", "".join(b[j1:j2])))
    return tuple(out)


def _action_text(action: Mapping[str, Any], name: str) -> str:
    value = action.get(name)
    if name == "measure":
        return f"{value['code']} {value['name']}" if value else ""
    if name in ("owner", "domain"):
        return value["name"] if value else ""
    if name == "due_on":
        return date.fromisoformat(value).strftime("%d %b %Y") if value else ""
    return value or ""


_DIFF_ACTION_FIELDS = {
    "description": "What will be done",
    "measure": "Measure it moves",
    "expected_effect": "By how much",
    "owner": "Owner",
    "resources": "Resources",
    "domain": "Domain it serves",
    "deliverable": "Key deliverable",
    "due_on": "Due date",
    "milestones": "Milestones",
}


def _changes(old: Mapping[str, Any], new: Mapping[str, Any], labels, text) -> list[TextChange]:
    out = []
    for name, label in labels.items():
        before, after = text(old, name), text(new, name)
        if before != after:
            out.append(TextChange(name, label, before, after, word_diff(before, after)))
    return out


def _content(version: PlanVersion | Mapping[str, Any] | None) -> tuple[int | None, dict]:
    if version is None:
        return None, {"fields": {}, "actions": [], "trajectory": []}
    if isinstance(version, PlanVersion):
        return version.number, version_content(version)
    return version.get("version"), dict(version)


def plan_diff(
    version_a: PlanVersion | Mapping[str, Any] | None,
    version_b: PlanVersion | Mapping[str, Any],
) -> PlanDiff:
    """Structured differences from ``version_a`` (older; None = nothing) to ``version_b``.

    Plan fields and each action's fields come with old and new text and a word-level diff;
    actions are matched by their id (stable across versions) and marked added, removed,
    changed or unchanged, with their numbers in each version; trajectory values by measure
    and month.
    """
    before_number, a = _content(version_a)
    after_number, b = _content(version_b)
    field_labels = {k: v for k, v in PLAN_FIELDS.items()}
    fields = _changes(
        a.get("fields", {}),
        b.get("fields", {}),
        field_labels,
        lambda doc, name: (
            (doc.get(name) or "").capitalize() if name == "risk_level" else doc.get(name) or ""
        ),
    )
    old_actions = {x["id"]: x for x in a.get("actions", [])}
    new_actions = {x["id"]: x for x in b.get("actions", [])}
    actions: list[ActionDiff] = []
    for action in b.get("actions", []):
        old = old_actions.get(action["id"])
        if old is None:
            actions.append(
                ActionDiff(
                    action["id"],
                    None,
                    action["number"],
                    "added",
                    action["description"],
                    tuple(_changes({}, action, _DIFF_ACTION_FIELDS, _action_text)),
                )
            )
            continue
        changes = _changes(old, action, _DIFF_ACTION_FIELDS, _action_text)
        actions.append(
            ActionDiff(
                action["id"],
                old["number"],
                action["number"],
                "changed" if changes else "unchanged",
                action["description"],
                tuple(changes),
            )
        )
    for action in a.get("actions", []):
        if action["id"] not in new_actions:
            actions.append(
                ActionDiff(
                    action["id"],
                    action["number"],
                    None,
                    "removed",
                    action["description"],
                    tuple(_changes(action, {}, _DIFF_ACTION_FIELDS, _action_text)),
                )
            )
    old_points = {
        (p["measure_code"], p["period"]): p["planned_value"] for p in a.get("trajectory", [])
    }
    new_points = {
        (p["measure_code"], p["period"]): p["planned_value"] for p in b.get("trajectory", [])
    }
    trajectory = [
        TrajectoryChange(
            measure, period, old_points.get((measure, period)), new_points.get((measure, period))
        )
        for measure, period in sorted(set(old_points) | set(new_points))
        if old_points.get((measure, period)) != new_points.get((measure, period))
    ]
    return PlanDiff(before_number, after_number, tuple(fields), tuple(actions), tuple(trajectory))
