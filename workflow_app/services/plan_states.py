"""Moving a plan through its review cycle: the one function every plan service uses.

The machine (:mod:`state_machines.plan_review`) says whether a move is legal; this module
applies it to the row, keeps the status history and writes the audit event, all in the
caller's transaction. Who may fire which event is checked by the calling service.
"""

from __future__ import annotations

from datetime import datetime

from state_machines.plan_review import STATUS_TITLES, IllegalPlanTransition, next_status
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.plans import PlanStatusChange, RecoveryPlan
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError


def move_plan(
    plan: RecoveryPlan,
    event: str,
    *,
    actor: Person | None,
    now: datetime | None = None,
    note: str = "",
) -> str:
    """Fire ``event`` on ``plan``: update its status, record the step and audit it.

    :raises ServiceError: the review cycle does not allow ``event`` from the plan's status
        (the message says what is allowed instead); nothing is changed.
    """
    now = now or utcnow()
    try:
        new_status = next_status(plan.status, event)
    except IllegalPlanTransition as illegal:
        raise ServiceError(str(illegal)) from None
    old_status = plan.status
    plan.status = new_status
    plan.updated_at = now
    db.session.add(
        PlanStatusChange(
            plan=plan,
            event=event,
            from_status=old_status,
            to_status=new_status,
            actor_id=actor.id if actor else None,
            note=note,
            changed_at=now,
        )
    )
    record_event(
        f"plan.{event}",
        object_type="plan",
        object_id=plan.id,
        summary=f"{plan.unit.name}: {plan.title} "
        f"{STATUS_TITLES[old_status].lower()} -> {STATUS_TITLES[new_status].lower()}"
        + (f" ({note})" if note else ""),
        actor=actor,
        details={"from": old_status, "to": new_status, "note": note},
    )
    return new_status
