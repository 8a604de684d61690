"""Plans in delivery: monthly updates, trajectory against actuals, failing plans and review
periods through the monthly review, completion."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from state_machines import get_framework
from tests.conftest import csrf_from
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.meetings import Meeting
from workflow_app.models.plans import PlanActionUpdate, PlanStatusChange
from workflow_app.services.errors import PermissionDenied, ServiceError
from workflow_app.services.plan_delivery import (
    ActionEntry,
    UpdateProblems,
    assess_plans,
    months_to_failing,
    plan_input_for_case,
    plan_trajectory,
    record_update,
    record_updates,
    review_period_for,
)
from workflow_app.services.review import run_review, unit_input

pytest_plugins = ["tests.plans.delivery_fixtures"]


def month(year: int, m: int) -> date:
    return date(year, m, 1)


def case_of(unit, track: str = "performance"):
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


OCT = month(2026, 10)
NOV = month(2026, 11)


def updates():
    return db.session.scalars(sa.select(PlanActionUpdate).order_by(PlanActionUpdate.id)).all()


def audit(action):
    return db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()


def form_data(page_text, entries, month_key="2026-10"):
    data = {"csrf_token": csrf_from(page_text), "month": month_key}
    for action_id, (status, narrative) in entries.items():
        if status is not None:
            data[f"status-{action_id}"] = status
        data[f"narrative-{action_id}"] = narrative
    return data


# --- monthly updates --------------------------------------------------------------------------


def test_the_lead_sends_the_monthly_update_for_last_month(client, login, delivery_setup):
    s = delivery_setup
    first, second = s.actions
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/updates")
    assert page.status_code == 200
    assert "Monthly update for October 2026" in page.text
    assert "Open a second theatre list on Saturdays" in page.text
    response = client.post(
        f"/plans/{s.plan.id}/updates",
        data=form_data(
            page.text,
            {
                first.id: ("on_track", "Saturday lists agreed with anaesthetics."),
                second.id: ("at_risk", "Validation team short of two staff."),
            },
        ),
    )
    assert response.status_code == 302, response.text
    rows = updates()
    assert [(u.action_id, u.period, u.status) for u in rows] == [
        (first.id, OCT, "on_track"),
        (second.id, OCT, "at_risk"),
    ]
    assert rows[1].narrative == "Validation team short of two staff."
    assert rows[0].updated_by_id == s.lead.id
    assert len(audit("plan.update_recorded")) == 2
    shown = client.get(f"/plans/{s.plan.id}/on-a-page")
    assert "Validation team short of two staff." in shown.text


def test_a_second_submission_for_the_month_edits_the_update_and_is_audited(app, delivery_setup):
    s = delivery_setup
    action = s.actions[0]
    record_update(s.lead, action, OCT, "on_track", "All good")
    db.session.commit()
    record_update(s.holder, action, OCT, "off_track", "The list was cancelled twice")
    db.session.commit()
    (row,) = updates()
    assert (row.status, row.narrative, row.updated_by_id) == (
        "off_track",
        "The list was cancelled twice",
        s.holder.id,
    )
    (edit,) = audit("plan.update_edited")
    details = json.loads(edit.details)
    assert details["before"] == {"status": "on_track", "narrative": "All good"}
    assert details["status"] == "off_track"
    assert edit.actor_id == s.holder.id
    # The same content again changes nothing and records nothing.
    record_update(s.holder, action, OCT, "off_track", "The list was cancelled twice")
    db.session.commit()
    assert len(audit("plan.update_edited")) == 1


def test_a_month_is_closed_once_its_review_has_run(client, login, delivery_setup):
    s = delivery_setup
    action = s.actions[0]
    record_update(s.lead, action, OCT, "on_track", "Fine")
    db.session.commit()
    run_review(OCT)
    db.session.commit()
    with pytest.raises(ServiceError, match="review of October 2026 has already run"):
        record_update(s.lead, action, OCT, "off_track", "Changed my mind")
    db.session.rollback()
    assert updates()[0].status == "on_track"
    # The form now reports on November, and a stale October form is refused with the reason.
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/updates")
    assert "Monthly update for November 2026" in page.text
    response = client.post(
        f"/plans/{s.plan.id}/updates",
        data=form_data(page.text, {a.id: ("off_track", "Later") for a in s.actions}),
    )
    assert response.status_code == 200
    assert "review of October 2026 has already run" in response.text
    assert "Report on November 2026 instead" in response.text
    db.session.expire_all()
    assert [(u.period, u.status) for u in updates()] == [(OCT, "on_track")]


def test_a_wrong_status_is_refused_with_a_message_and_nothing_is_stored(
    client, login, delivery_setup
):
    s = delivery_setup
    first, second = s.actions
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/updates")
    response = client.post(
        f"/plans/{s.plan.id}/updates",
        data=form_data(
            page.text,
            {first.id: ("finished", "Typed text is kept"), second.id: ("on_track", "Fine")},
        ),
    )
    assert response.status_code == 200
    assert "There is a problem" in response.text
    assert "Choose on track, at risk or off track for action 1" in response.text
    assert "Typed text is kept" in response.text
    assert "Nothing was saved" in response.text
    assert updates() == []
    assert audit("plan.update_recorded") == []


def test_an_action_at_risk_needs_a_narrative(app, delivery_setup):
    s = delivery_setup
    with pytest.raises(UpdateProblems) as refused:
        record_updates(
            s.lead,
            s.plan,
            OCT,
            {
                s.actions[0].id: ActionEntry("on_track", ""),
                s.actions[1].id: ActionEntry("off_track", "   "),
            },
        )
    assert refused.value.problems == {
        s.actions[1].id: "Say why action 2 is off track and what is being done"
    }
    db.session.rollback()
    assert updates() == []


def test_months_before_approval_or_in_the_future_are_refused(app, delivery_setup):
    s = delivery_setup
    with pytest.raises(ServiceError, match="approved in May 2026"):
        record_update(s.lead, s.actions[0], month(2026, 4), "on_track")
    with pytest.raises(ServiceError, match="December 2026 has not started"):
        record_update(s.lead, s.actions[0], month(2026, 12), "on_track")


def test_a_stale_form_gives_the_text_back_and_stores_nothing(client, login, delivery_setup):
    s = delivery_setup
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/updates")
    data = form_data(page.text, {a.id: ("on_track", "My carefully typed words") for a in s.actions})
    data["csrf_token"] = "stale"
    response = client.post(f"/plans/{s.plan.id}/updates", data=data)
    assert response.status_code == 400
    assert "This form had expired, so nothing was saved" in response.text
    assert "My carefully typed words" in response.text
    assert updates() == []


def test_who_may_send_updates(client, login, create_person, create_unit, delivery_setup):
    s = delivery_setup
    path = f"/plans/{s.plan.id}/updates"
    other_lead = create_person("directorate_lead")
    create_unit(lead=other_lead, name="Another unit")
    login(other_lead)
    assert client.get(path).status_code == 404  # cannot see the unit: the plan does not exist
    assert client.get(f"/plans/{s.plan.id}/on-a-page").status_code == 404
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/").text)})

    committee = create_person("committee_member")
    login(committee)
    assert client.get(f"/plans/{s.plan.id}/on-a-page").status_code == 200
    assert client.get(path).status_code == 403
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/").text)})

    # An action's owner reports on their own action only.
    login(s.owner)
    page = client.get(path)
    assert page.status_code == 200
    assert "Validate the waiting list" in page.text
    assert "Open a second theatre list" not in page.text
    with pytest.raises(PermissionDenied):
        record_update(s.owner, s.actions[0], OCT, "on_track")
    with pytest.raises(PermissionDenied):
        record_update(committee, s.actions[1], OCT, "on_track")
    record_update(s.owner, s.actions[1], OCT, "on_track", "Done half")
    db.session.commit()
    assert len(updates()) == 1


def test_an_update_can_mark_an_action_delivered(app, delivery_setup):
    s = delivery_setup
    record_update(s.lead, s.actions[1], OCT, "on_track", "Validated", delivered=True)
    db.session.commit()
    assert s.actions[1].delivered_on == date(2026, 11, 23)
    assert plan_input_for_case(case_of(s.unit), OCT).actions_delivered is False
    record_update(s.lead, s.actions[0], NOV, "on_track", "Lists running", delivered=True)
    db.session.commit()
    assert plan_input_for_case(case_of(s.unit), NOV).actions_delivered is True


# --- trajectory -------------------------------------------------------------------------------


def test_trajectory_respects_direction_and_falls_back_to_local_then_national_target(
    app, delivery_setup, delivery_actuals, delivery_measure
):
    s = delivery_setup
    delivery_actuals(s.rtt, {month(2026, 6): 80, month(2026, 7): 81.5, month(2026, 8): 90})
    delivery_actuals(s.wait, {month(2026, 6): 29, month(2026, 7): 29, month(2026, 8): 27})
    delivery_actuals(s.rtt, {month(2026, 7): 82}, revision=2)  # the latest revision counts
    trajectory = plan_trajectory(s.plan, months=[month(2026, m) for m in range(6, 12)], until=OCT)
    rtt, wait = trajectory.measures
    assert rtt.measure.code == "RTT" and wait.measure.code == "WAIT"
    june, july, august, september, october, november = rtt.months
    assert (june.planned, june.actual, june.met, june.bar_kind) == (80, 80, True, "plan")
    assert (july.actual, july.met) == (82, True)
    assert august.met is True
    assert september.actual is None and september.met is None
    assert november.judged is False  # after the month judged
    # Lower is better: 29 against a plan of 28 in July is a miss; 27 against 26 in August too.
    assert [m.met for m in wait.months[:3]] == [True, False, False]
    # Months judged: June met; July and August missed on WAIT; no data since.
    assert trajectory.judged == (
        (month(2026, 6), True),
        (month(2026, 7), False),
        (month(2026, 8), False),
    )
    assert trajectory.missed_run == [month(2026, 7), month(2026, 8)]
    assert trajectory.met_months == 0
    # A month without data for WAIT neither counts nor breaks the run: September has none.
    delivery_actuals(s.rtt, {month(2026, 9): 86})
    delivery_actuals(s.wait, {month(2026, 10): 23})
    later = plan_trajectory(s.plan, months=(), until=OCT)
    assert later.judged[-2:] == ((month(2026, 9), True), (month(2026, 10), False))
    # A measure with no plan value for a month is judged on its local trajectory, then target.
    october_wait = plan_trajectory(s.plan, months=[OCT, NOV], until=NOV).measures[1].months
    assert (october_wait[0].planned, october_wait[0].bar_kind) == (22, "plan")
    assert (october_wait[1].bar, october_wait[1].bar_kind) == (18, "national")
    local_only = delivery_measure(s.unit, "LOC", target=50, local={NOV: 40}, name="Local one")
    s.plan.actions[0].measure_id = local_only.id
    db.session.commit()
    db.session.refresh(s.plan.actions[0])
    row = next(
        m
        for m in plan_trajectory(s.plan, months=[NOV], until=NOV).measures
        if m.measure.code == "LOC"
    )
    assert (row.months[0].bar, row.months[0].bar_kind, row.months[0].local_target) == (
        40,
        "local",
        40,
    )


def test_the_review_sees_the_real_plan(app, delivery_setup, delivery_actuals):
    s = delivery_setup
    delivery_actuals(s.rtt, {month(2026, m): 95 for m in range(6, 11)})
    delivery_actuals(s.wait, {month(2026, m): 10 for m in range(6, 11)})
    data = unit_input(s.unit, OCT)
    (plan,) = data.plans
    assert plan.track == "performance"
    assert plan.approved_on == date(2026, 5, 14)
    assert plan.trajectory_met_months == 5
    assert plan.risk_level == "high"
    assert set(plan.measure_codes) == {"RTT", "WAIT"}
    assert plan.actions_delivered is False
    # The plan's planned value is the measure's trajectory for that month (amber rule).
    rtt = next(m for m in data.measures if m.code == "RTT")
    assert {p.period: p.trajectory for p in rtt.series}[OCT] == 86


# --- failing plans ----------------------------------------------------------------------------


def test_framework_thresholds():
    iqpf = get_framework("iqpf")
    assert months_to_failing(iqpf) == 2
    assert review_period_for(iqpf, "2b") == "2 months"
    assert review_period_for(iqpf, "2a") is None
    assert months_to_failing(get_framework("nhs_wales")) == 2


def statuses(plan):
    return [(c.event, c.to_status) for c in plan.status_changes]


def test_a_failing_plan_is_marked_then_escalation_to_level_3_is_proposed(
    app, delivery_setup, delivery_actuals
):
    s = delivery_setup
    plan = s.plan
    delivery_actuals(s.wait, {month(2026, m): 10 for m in range(6, 12)})  # WAIT always fine
    delivery_actuals(s.rtt, {month(2026, 6): 81, month(2026, 7): 79})  # July missed
    outcome = run_review(month(2026, 7))
    db.session.commit()
    assert plan.status == "in_delivery" and outcome.plans == []

    delivery_actuals(s.rtt, {month(2026, 8): 80})  # August missed too: two months
    outcome = run_review(month(2026, 8))
    db.session.commit()
    assert plan.status == "failing"
    assert [a.events for a in outcome.plans] == [["mark_failing"]]
    assert statuses(plan)[-1] == ("mark_failing", "failing")
    assert "2 consecutive months (Jul 2026, Aug 2026)" in plan.status_changes[-1].note
    assert outcome.created == []  # 2 months: failing, not yet an escalation
    assert plan.review_period_ends_on is None  # Level 2a sets no review period

    delivery_actuals(s.rtt, {month(2026, 9): 81})  # September: three months missed
    outcome = run_review(month(2026, 9))
    db.session.commit()
    (proposal,) = outcome.created
    assert (proposal.case.track, proposal.from_level, proposal.to_level) == (
        "performance",
        "2a",
        "3",
    )
    assert proposal.rule_id == "recovery_failing"
    assert "recovery plan approved in May" in proposal.reason
    assert "3 consecutive months" in proposal.reason
    evidence = json.loads(proposal.evidence)
    assert evidence
    assert case_of(s.unit).level == "2a"  # the engine proposes; people decide

    delivery_actuals(s.rtt, {month(2026, 10): 87})  # October: back on the plan's 86
    outcome = run_review(OCT)
    db.session.commit()
    assert plan.status == "in_delivery"
    assert statuses(plan)[-1] == ("back_on_track", "in_delivery")
    assert [a.events for a in outcome.plans] == [["back_on_track"]]


def test_a_failing_2b_action_plan_gets_a_review_period_and_then_a_proposal(
    clock, create_person, create_unit, delivery_measure, delivery_plan, delivery_actuals
):
    lead = create_person("directorate_lead")
    executive = create_person("executive_director", name="Eve Exec")
    unit = create_unit(lead=lead, name="Corporate Services", accountable_executive_id=executive.id)
    agency = delivery_measure(
        unit,
        "AGENCY",
        target=100_000,
        direction="lower_is_better",
        unit_of_measure="gbp",
        domain=("finance_value", "Finance & Value"),
        kind="other",  # not a national target: the whole-unit 2a trigger stays out of it
        name="Agency spend",
    )
    plan = delivery_plan(
        unit,
        track="finance",
        level="2b",
        kind="action_plan",
        title="Agency spend action plan",
        trajectory={agency: {month(2026, m): 150_000 - (m - 6) * 10_000 for m in range(6, 13)}},
        actions=[{"description": "Stop off-framework agency shifts", "measure_id": agency.id}],
    )
    delivery_actuals(agency, {month(2026, 6): 149_000, month(2026, 7): 160_000})
    run_review(month(2026, 7))
    db.session.commit()
    assert plan.status == "in_delivery"

    delivery_actuals(agency, {month(2026, 8): 158_000})  # two months over the plan
    outcome = run_review(month(2026, 8))
    db.session.commit()
    assert plan.status == "review_period"
    assert statuses(plan)[-2:] == [
        ("mark_failing", "failing"),
        ("set_review_period", "review_period"),
    ]
    assert plan.review_period_ends_on == date(2026, 10, 31)  # August + 2 months
    (assessment,) = outcome.plans
    deadline = assessment.deadline
    assert deadline.title == "Follow-up review of the failing plan: Agency spend action plan"
    assert deadline.kind == "plan_follow_up_review"
    assert deadline.owner_id == executive.id
    assert deadline.case_id == case_of(unit, "finance").id
    # Due on the day the review of October runs: the 10th working day after 31 October.
    assert deadline.due_at == datetime(2026, 11, 13, 17, 0, tzinfo=UTC)
    assert outcome.created == []
    # ... and a follow-up review meeting is requested, to be held by the period's end.
    (meeting,) = db.session.scalars(
        sa.select(Meeting).where(Meeting.kind == "follow_up_review")
    ).all()
    assert (meeting.status, meeting.hold_by) == ("requested", date(2026, 10, 31))
    assert meeting.deadline_id == deadline.id
    assert meeting.case_id == case_of(unit, "finance").id
    assert executive.id in {i.person_id for i in meeting.invitees}

    delivery_actuals(agency, {month(2026, 9): 157_000})  # three months missed, but in the period
    outcome = run_review(month(2026, 9))
    db.session.commit()
    assert outcome.created == []
    assert plan.status == "review_period"

    delivery_actuals(agency, {month(2026, 10): 156_000})  # still failing at the period's end
    outcome = run_review(OCT)
    db.session.commit()
    (proposal,) = outcome.created
    assert (proposal.case.track, proposal.from_level, proposal.to_level) == ("finance", "2b", "3")
    assert proposal.rule_id == "recovery_failing"
    assert proposal.status == "pending"
    assert "4 consecutive months" in proposal.reason


def test_a_plan_back_on_track_leaves_its_review_period(
    clock, create_person, create_unit, delivery_measure, delivery_plan, delivery_actuals
):
    unit = create_unit(lead=create_person("directorate_lead"))
    agency = delivery_measure(
        unit,
        "AGENCY",
        target=100,
        direction="lower_is_better",
        domain=("finance_value", "Finance & Value"),
    )
    plan = delivery_plan(
        unit,
        track="finance",
        level="2b",
        trajectory={agency: {month(2026, m): 120 for m in range(6, 13)}},
        actions=[{"description": "Cut agency shifts", "measure_id": agency.id}],
    )
    delivery_actuals(agency, {month(2026, 6): 130, month(2026, 7): 130})
    run_review(month(2026, 7))
    db.session.commit()
    assert plan.status == "review_period"
    delivery_actuals(agency, {month(2026, 8): 119})
    outcome = run_review(month(2026, 8))
    db.session.commit()
    assert plan.status == "in_delivery"
    assert plan.review_period_ends_on is None
    assert [a.events for a in outcome.plans] == [["back_on_track"]]
    follow_up = db.session.scalar(
        sa.select(Deadline).where(Deadline.kind == "plan_follow_up_review")
    )
    assert follow_up.status == "cancelled"
    assert follow_up.cancelled_reason == "the plan is back on its trajectory"
    meeting = db.session.scalar(sa.select(Meeting).where(Meeting.kind == "follow_up_review"))
    assert meeting.status == "cancelled"
    assert meeting.cancelled_reason == "The plan met its trajectory in August 2026"


def test_an_older_month_rereviewed_does_not_move_plans(app, delivery_setup, delivery_actuals):
    s = delivery_setup
    delivery_actuals(s.wait, {month(2026, m): 10 for m in range(6, 11)})
    delivery_actuals(s.rtt, {month(2026, 6): 70, month(2026, 7): 70, month(2026, 8): 90})
    run_review(month(2026, 8))
    db.session.commit()
    assert s.plan.status == "in_delivery"
    # Re-running July (as revised data does) would judge the plan failing; it is left alone.
    assert assess_plans(month(2026, 7)) == []
    run_review(month(2026, 7))
    db.session.commit()
    assert s.plan.status == "in_delivery"


def test_an_approved_plan_starts_delivery_at_the_next_review(app, delivery_setup):
    s = delivery_setup
    s.plan.status = "approved"
    db.session.commit()
    run_review(OCT)
    db.session.commit()
    assert s.plan.status == "in_delivery"
    assert statuses(s.plan) == [("start_delivery", "in_delivery")]


# --- completing a plan --------------------------------------------------------------------------


def test_completing_a_plan_needs_every_action_delivered_and_a_reviewer(
    client, login, create_person, delivery_setup
):
    s = delivery_setup
    team = create_person("performance_team")
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/on-a-page")
    response = client.post(
        f"/plans/{s.plan.id}/complete", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 403
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/").text)})

    login(team)
    page = client.get(f"/plans/{s.plan.id}/on-a-page")
    response = client.post(
        f"/plans/{s.plan.id}/complete",
        data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )
    assert "cannot be completed until every action is delivered" in response.text
    assert "not delivered: action 1, 2" in response.text
    db.session.expire_all()
    assert s.plan.status == "in_delivery"

    for action in s.plan.actions:
        action.delivered_on = date(2026, 11, 2)
    db.session.commit()
    response = client.post(
        f"/plans/{s.plan.id}/complete", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert s.plan.status == "completed"
    assert s.plan.completed_at is not None
    changes = db.session.scalars(sa.select(PlanStatusChange)).all()
    assert [(c.event, c.actor_id) for c in changes] == [("complete", team.id)]
    # A completed plan with its actions delivered feeds the de-escalation trigger.
    assert plan_input_for_case(case_of(s.unit), NOV).actions_delivered is True


def test_the_delivery_partial_renders_for_the_plan_page(app, client, login, delivery_setup):
    """templates/plans/_delivery.html works with only ``plan`` in the context."""
    from flask import render_template_string

    s = delivery_setup
    record_update(s.lead, s.actions[1], OCT, "at_risk", "Two staff short")
    db.session.commit()
    with app.test_request_context():
        from flask_login import login_user

        login_user(s.lead)
        html = render_template_string('{% include "plans/_delivery.html" %}', plan=s.plan)
    assert "Two staff short" in html
    assert "At risk" in html
    assert f"/plans/{s.plan.id}/updates" in html
    assert f"/plans/{s.plan.id}/on-a-page.pdf" in html
    assert f"/plans/{s.plan.id}/export.xlsx" in html


def test_decisions_are_created_only_through_the_proposal_path(
    app, delivery_setup, delivery_actuals
):
    """The failing plan's proposal is a pending engine decision, never a level change."""
    s = delivery_setup
    delivery_actuals(s.wait, {month(2026, m): 10 for m in range(6, 11)})
    delivery_actuals(s.rtt, {month(2026, m): 70 for m in range(6, 11)})
    run_review(OCT)
    db.session.commit()
    pending = db.session.scalars(sa.select(Decision).where(Decision.status == "pending")).all()
    assert [(d.origin, d.to_level, d.rule_id) for d in pending] == [
        ("engine", "3", "recovery_failing")
    ]
    assert s.plan.status == "failing"
    assert case_of(s.unit).level == "2a"
    assert datetime.now(UTC).year == 2026


def test_the_scheduled_monthly_review_judges_plans_too(app, delivery_setup, delivery_actuals):
    from workflow_app.scheduling.monthly_review import run_monthly_review

    s = delivery_setup
    delivery_actuals(s.wait, {month(2026, m): 10 for m in range(6, 11)})
    delivery_actuals(s.rtt, {month(2026, m): 70 for m in range(6, 11)})
    result = run_monthly_review(OCT)
    db.session.commit()
    assert s.plan.status == "failing"
    assert [(p.rule_id, p.to_level) for p in result.proposals] == [("recovery_failing", "3")]
    assert run_monthly_review(OCT) is None  # once a month
