"""Starting, saving, submitting, returning, resubmitting and approving a plan (services)."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.deadlines import Deadline
from workflow_app.models.outbox import OutboxMessage
from workflow_app.models.plans import PlanReviewComment, PlanStatusChange, RecoveryPlan
from workflow_app.services.audit import verify_chain
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.plans import (
    PlanNotSmart,
    approve,
    plan_data,
    return_for_changes,
    save_draft,
    start_plan,
    start_review,
    submit,
    version_content,
    version_intact,
    withdraw,
)
from workflow_app.working_days import WorkingCalendar


def deadlines(kind: str) -> list[Deadline]:
    return list(db.session.scalars(sa.select(Deadline).where(Deadline.kind == kind)))


def mails(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)))


def working_days_between(start, end) -> int:
    calendar = WorkingCalendar.from_framework(
        {"holidays": ["england", "wales"], "timezone": "Europe/London"}
    )
    return calendar.working_days_between(calendar.local_date(start), calendar.local_date(end))


# --- starting ---------------------------------------------------------------------------------


def test_start_links_the_plan_to_its_deadline_and_decision(world):
    plan = start_plan(world.lead, world.case)
    db.session.commit()
    assert plan.status == "draft"
    assert plan.kind == "recovery_plan"
    assert plan.due_deadline_id == world.deadline.id
    assert plan.decision_id == world.decision.id
    assert plan.title == "Recovery plan: Surgery (Performance, Level 2a)"
    assert world.deadline.title == "Recovery plan due"
    (change,) = plan.status_changes
    assert (change.event, change.from_status, change.to_status) == ("start", None, "draft")
    assert "plan.started" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_a_second_start_returns_the_open_plan(world):
    first = start_plan(world.lead, world.case)
    db.session.commit()
    assert start_plan(world.lead, world.case).id == first.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryPlan)) == 1


def test_no_plan_can_start_without_a_plan_due(world):
    from workflow_app.models.cases import EscalationCase

    finance = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == world.unit.id, EscalationCase.track == "finance"
        )
    )
    with pytest.raises(ServiceError, match="No plan is due on this case"):
        start_plan(world.lead, finance)


def test_only_the_units_writers_start_a_plan(world):
    with pytest.raises(PermissionDenied, match="Surgery's lead or budget holder"):
        start_plan(world.other_lead, world.case)
    with pytest.raises(PermissionDenied):
        start_plan(world.executive, world.case)
    assert start_plan(world.reviewer, world.case).status == "draft"  # performance team


# --- the working copy ---------------------------------------------------------------------------


def test_a_draft_keeps_actions_in_order_and_the_trajectory(world, draft):
    data = plan_data(draft)
    first, second = data["actions"]
    assert first["description"] == "Run weekend theatre lists for orthopaedics"
    # reorder, remove one, add one, change the trajectory
    data["actions"] = [
        second,
        {**first, "id": None, "description": "A brand new action"},
    ]
    data["trajectory"] = [
        {"measure_id": world.measures["RTT18"].id, "period": date(2027, 1, 1), "planned_value": 80}
    ]
    save_draft(world.lead, draft, data, draft.lock_version)
    db.session.commit()
    assert [a.description for a in draft.actions] == [
        "Validate the waiting list with every patient",
        "A brand new action",
    ]
    assert [a.position for a in draft.actions] == [0, 1]
    assert draft.actions[0].id == second["id"]
    assert [(p.period, int(p.planned_value)) for p in draft.trajectory] == [(date(2027, 1, 1), 80)]
    saved = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.draft_saved")
    ).all()
    assert len(saved) == 2
    assert json.loads(saved[-1].details)["removed_actions"] == [first["id"]]


def test_a_draft_need_not_be_smart(world):
    plan = start_plan(world.lead, world.case)
    save_draft(
        world.lead,
        plan,
        {"summary": "Just started", "actions": [{"description": "Half an idea"}]},
        plan.lock_version,
    )
    db.session.commit()
    assert plan.summary == "Just started"
    assert plan.actions[0].measure_id is None


def test_a_stale_lock_version_is_a_conflict_naming_who_changed_it(world, draft):
    opened_at = draft.lock_version
    save_draft(world.reviewer, draft, world.smart_data(summary="Changed"), opened_at)
    db.session.commit()
    with pytest.raises(Conflict) as conflict:
        save_draft(world.lead, draft, world.smart_data(summary="Mine"), opened_at)
    db.session.rollback()
    assert str(conflict.value).startswith("This plan was changed by Pat Performance at ")
    assert "since you opened it, so nothing you sent was saved" in str(conflict.value)
    assert db.session.get(RecoveryPlan, draft.id).summary == "Changed"


def test_a_measure_of_another_unit_cannot_be_saved(world, draft):
    data = world.smart_data()
    data["actions"][0]["measure_id"] = world.measures["foreign"].id
    with pytest.raises(ServiceError, match="not one of Surgery's measures"):
        save_draft(world.lead, draft, data, draft.lock_version)


# --- submitting ---------------------------------------------------------------------------------


def test_submit_refuses_a_plan_that_is_not_smart_and_changes_nothing(world):
    plan = start_plan(world.lead, world.case)
    save_draft(world.lead, plan, world.smart_data(summary=""), plan.lock_version)
    db.session.commit()
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    with pytest.raises(PlanNotSmart) as refused:
        submit(world.lead, plan)
    db.session.rollback()
    assert refused.value.errors == {"summary": "Write a summary of the plan"}
    assert plan.status == "draft" and plan.versions == []
    assert world.deadline.status == "open"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events


def test_submit_freezes_a_hashed_version_meets_the_deadline_and_asks_for_review(world, draft):
    version = submit(world.lead, draft)
    db.session.commit()
    assert draft.status == "submitted" and draft.current_version == 1
    assert version.number == 1 and version.submitted_by_id == world.lead.id
    assert version.content_sha256 == hashlib.sha256(version.content.encode()).hexdigest()
    assert version_intact(version)
    content = version_content(version)
    assert [a["description"] for a in content["actions"]] == [
        "Run weekend theatre lists for orthopaedics",
        "Validate the waiting list with every patient",
    ]
    assert content["actions"][0]["measure"]["code"] == "RTT18"
    assert content["actions"][0]["owner"]["name"] == "Lee Lead"
    assert content["smart_labels"] == [
        "Specific",
        "Measurable",
        "Achievable",
        "Relevant",
        "Time-bound",
    ]
    assert world.deadline.status == "done"
    (review,) = deadlines("plan_review_due")
    assert review.owner_id == world.executive.id  # the unit's accountable executive
    assert review.title == "Review the recovery plan (version 1)"
    assert working_days_between(version.submitted_at, review.due_at) == 5
    assert review.case_id == world.case.id
    submitted = mails("plan_submitted")
    assert {m.to_address for m in submitted} == {"exec@example.nhs.uk", "perf@example.nhs.uk"}
    assert "Review due:" in submitted[0].body_text and "/plans/" in submitted[0].link
    assert verify_chain().ok


def test_submitting_twice_is_refused_by_the_machine(world, draft):
    submit(world.lead, draft)
    db.session.commit()
    with pytest.raises(
        ServiceError, match="You cannot submit the plan for review: the plan is submitted"
    ):
        submit(world.lead, draft)


# --- reviewing ----------------------------------------------------------------------------------


def test_the_returned_and_resubmitted_cycle(world, draft):
    v1 = submit(world.lead, draft)
    db.session.commit()
    start_review(world.reviewer, draft)
    db.session.commit()
    assert draft.status == "in_review"
    first_id, second_id = (a.id for a in draft.actions)
    return_for_changes(
        world.reviewer,
        draft,
        "Good start; the first action needs dates.",
        {first_id: "Which weekends, and from when?", second_id: "  "},
    )
    db.session.commit()
    assert draft.status == "returned"
    assert (v1.outcome, v1.reviewed_by_id) == ("returned", world.reviewer.id)
    assert v1.outcome_note == "Good start; the first action needs dates."
    (comment,) = v1.comments  # the blank one is ignored
    assert (comment.action_id, comment.field) == (first_id, f"action:{first_id}")
    assert comment.comment == "Which weekends, and from when?"
    (review1,) = deadlines("plan_review_due")
    assert review1.status == "done"
    (resubmit,) = deadlines("plan_resubmission_due")
    assert resubmit.status == "open" and resubmit.owner_id == world.lead.id
    (returned_mail,) = mails("plan_returned")
    assert returned_mail.to_address == "lead@example.nhs.uk"
    assert "Which weekends, and from when?" in returned_mail.body_text
    assert "On action 1 (Run weekend theatre lists" in returned_mail.body_text

    data = plan_data(draft)
    data["actions"][0]["description"] = "Run weekend theatre lists for orthopaedics every Saturday"
    data["actions"][0]["milestones"] = "09/01/2027 first Saturday list"
    save_draft(world.lead, draft, data, draft.lock_version)
    v2 = submit(world.lead, draft)
    db.session.commit()
    assert v2.number == 2 and draft.status == "submitted"
    assert resubmit.status == "done"
    assert [d.status for d in deadlines("plan_review_due")] == ["done", "open"]

    approve(world.executive, draft, "Agreed at the Executive Team")
    db.session.commit()
    assert draft.status == "in_delivery"
    assert draft.approved_by_id == world.executive.id and draft.approved_at is not None
    assert (v2.outcome, v2.outcome_note) == ("approved", "Agreed at the Executive Team")
    assert [d.status for d in deadlines("plan_review_due")] == ["done", "done"]
    assert [c.event for c in draft.status_changes] == [
        "start",
        "submit",
        "start_review",
        "return_for_changes",
        "submit",
        "start_review",  # approving straight from "submitted" records the start of the review
        "approve",
        "start_delivery",
    ]
    (approved_mail,) = [m for m in mails("plan_approved") if m.to_address == "lead@example.nhs.uk"]
    assert "now in delivery" in approved_mail.body_text
    assert version_intact(v1) and version_intact(v2)
    assert version_content(v1)["actions"][0]["description"] == (
        "Run weekend theatre lists for orthopaedics"
    )
    assert verify_chain().ok


def test_a_person_cannot_review_a_version_they_submitted(world):
    plan = start_plan(world.reviewer, world.case)  # the performance team writes it
    save_draft(world.reviewer, plan, world.smart_data(), plan.lock_version)
    submit(world.reviewer, plan)
    db.session.commit()
    for act in (
        lambda: start_review(world.reviewer, plan),
        lambda: approve(world.reviewer, plan),
        lambda: return_for_changes(world.reviewer, plan, "No"),
    ):
        with pytest.raises(PermissionDenied, match="You submitted this version"):
            act()
    assert plan.status == "submitted"


def test_leads_cannot_review(world, draft):
    submit(world.lead, draft)
    db.session.commit()
    with pytest.raises(PermissionDenied, match="Only the performance team"):
        approve(world.other_lead, draft)


def test_returning_needs_a_comment(world, draft):
    submit(world.lead, draft)
    start_review(world.reviewer, draft)
    db.session.commit()
    with pytest.raises(ServiceError, match="Write what needs to change"):
        return_for_changes(world.reviewer, draft, " ", {draft.actions[0].id: ""})
    db.session.rollback()
    assert draft.status == "in_review"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PlanReviewComment)) == 0


def test_a_comment_on_an_action_alone_is_enough_and_foreign_actions_are_refused(world, draft):
    submit(world.lead, draft)
    db.session.commit()
    with pytest.raises(ServiceError, match="not in this version"):
        return_for_changes(world.reviewer, draft, "", {999_999: "Hm"})
    db.session.rollback()
    return_for_changes(world.reviewer, draft, "", {draft.actions[1].id: "Which patients?"})
    db.session.commit()
    assert draft.status == "returned"


def test_comments_survive_when_the_lead_removes_the_action(world, draft):
    v1 = submit(world.lead, draft)
    db.session.commit()
    removed_id = draft.actions[0].id
    return_for_changes(world.reviewer, draft, "Drop it", {removed_id: "Not needed"})
    db.session.commit()
    data = plan_data(draft)
    data["actions"] = data["actions"][1:]
    save_draft(world.lead, draft, data, draft.lock_version)
    db.session.commit()
    (comment,) = v1.comments
    assert comment.action_id is None and comment.field == f"action:{removed_id}"


def test_withdrawing_cancels_the_plans_own_deadlines(world, draft):
    submit(world.lead, draft)
    db.session.commit()
    with pytest.raises(ServiceError, match="Give the reason"):
        withdraw(world.lead, draft, "")
    withdraw(world.executive, draft, "De-escalated at the Executive Team")
    db.session.commit()
    assert draft.status == "withdrawn"
    (review,) = deadlines("plan_review_due")
    assert review.status == "cancelled"
    change = db.session.scalars(
        sa.select(PlanStatusChange).where(PlanStatusChange.event == "withdraw")
    ).one()
    assert change.note == "De-escalated at the Executive Team"
    with pytest.raises(PermissionDenied):
        withdraw(world.other_lead, draft, "Because")


def test_a_withdrawn_draft_leaves_the_plan_due_so_a_new_plan_can_start(world):
    plan = start_plan(world.lead, world.case)
    withdraw(world.lead, plan, "Started on the wrong case")
    db.session.commit()
    assert world.deadline.status == "open"
    again = start_plan(world.lead, world.case)
    assert again.id != plan.id


def test_the_database_refuses_a_second_open_plan_on_a_case(world):
    # Two "Start the plan" clicks racing both pass start_plan's look-up; the partial unique
    # index turns the second insert into a Conflict and nothing of it is kept.
    from workflow_app.services.unit_of_work import transaction

    first = start_plan(world.lead, world.case)
    db.session.commit()
    clash = "clashes with a change someone else has just saved"
    with pytest.raises(Conflict, match=clash), transaction():
        db.session.add(
            RecoveryPlan(
                case_id=world.case.id, unit_id=world.unit.id, title="A second draft", status="draft"
            )
        )
    plans = db.session.scalars(sa.select(RecoveryPlan)).all()
    assert [plan.id for plan in plans] == [first.id]


def test_a_completed_or_withdrawn_plan_does_not_block_the_next_one(world):
    plan = start_plan(world.lead, world.case)
    withdraw(world.lead, plan, "Started on the wrong case")
    db.session.add(
        RecoveryPlan(
            case_id=world.case.id, unit_id=world.unit.id, title="Earlier", status="completed"
        )
    )
    db.session.commit()
    assert start_plan(world.lead, world.case).status == "draft"
    db.session.commit()
    open_plans = db.session.scalars(
        sa.select(RecoveryPlan).where(RecoveryPlan.status.not_in(("completed", "withdrawn")))
    ).all()
    assert len(open_plans) == 1
