"""Every event of the plan review cycle from every status, through the services: a legal move
lands where the machine says; an illegal one gives the machine's message and changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from state_machines.plan_review import EVENTS, STATUS_TITLES, IllegalPlanTransition
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.deadlines import Deadline
from workflow_app.models.outbox import OutboxMessage
from workflow_app.models.plans import PlanReviewComment, PlanStatusChange, PlanVersion
from workflow_app.services.errors import ServiceError
from workflow_app.services.plan_states import move_plan
from workflow_app.services.plans import (
    approve,
    return_for_changes,
    start_review,
    submit,
    withdraw,
)

# Returning or approving straight from "submitted" records the start of the review first
# (services/plans.py), so for those two services "submitted" is a legal starting point too.
SERVICE_EXTRA_SOURCES = {"return_for_changes": ("submitted",), "approve": ("submitted",)}
# Approving puts the plan in delivery in the same transaction.
SERVICE_DESTINATION = {"approve": "in_delivery"}


def fire(world, plan, event: str) -> None:
    if event == "submit":
        submit(world.lead, plan)
    elif event == "start_review":
        start_review(world.reviewer, plan)
    elif event == "return_for_changes":
        return_for_changes(world.reviewer, plan, "Please add dates")
    elif event == "approve":
        approve(world.reviewer, plan, "Approved")
    elif event == "withdraw":
        withdraw(world.lead, plan, "No longer needed")
    else:  # the delivery events: their services (plan_delivery) use move_plan the same way
        move_plan(plan, event, actor=world.reviewer)


def footprint() -> dict[str, int]:
    counts = {}
    for model in (
        AuditEvent,
        PlanStatusChange,
        PlanVersion,
        PlanReviewComment,
        Deadline,
        OutboxMessage,
    ):
        counts[model.__name__] = db.session.scalar(sa.select(sa.func.count()).select_from(model))
    return counts


@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_from_every_status(world, draft, event):
    submit(world.lead, draft)  # a version exists, submitted by the lead (not the reviewer)
    db.session.commit()
    sources, destination, _ = EVENTS[event]
    legal = set(sources) | set(SERVICE_EXTRA_SOURCES.get(event, ()))
    for status in STATUS_TITLES:
        draft.status = status
        db.session.flush()
        before = footprint()
        if status in legal:
            fire(world, draft, event)
            assert draft.status == SERVICE_DESTINATION.get(event, destination), (status, event)
            assert footprint()["PlanStatusChange"] > before["PlanStatusChange"]
        else:
            with pytest.raises(ServiceError) as refused:
                fire(world, draft, event)
            assert str(refused.value) == str(IllegalPlanTransition(status, event)), status
            assert draft.status == status
            assert footprint() == before, (status, event)
        db.session.rollback()
