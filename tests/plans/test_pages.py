"""The plan pages: the plan due on home and case pages, the form, SMART errors, the review."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import csrf_from, sign_in
from tests.plans.forms import fill_action, fill_plan, form_fields
from workflow_app.extensions import db
from workflow_app.models.plans import RecoveryPlan
from workflow_app.services.plans import save_draft, start_plan, submit


def started(world) -> RecoveryPlan:
    plan = start_plan(world.lead, world.case)
    db.session.commit()
    return plan


def fresh(plan) -> RecoveryPlan:
    db.session.expire_all()
    return db.session.get(RecoveryPlan, plan.id)


def post_edit(client, plan, fields, do):
    return client.post(f"/plans/{plan.id}/edit", data={**fields, "do": do})


def test_the_lead_sees_the_plan_due_on_the_home_and_case_pages(world, client, login):
    login(world.lead)
    home = client.get("/")
    assert "Recovery plan due 7 December 2026" in home.text
    assert "Write the plan" in home.text
    case_page = client.get(f"/cases/{world.case.id}")
    assert "Recovery plan due 7 December 2026" in case_page.text
    response = client.post(
        f"/plans/start/{world.case.id}", data={"csrf_token": csrf_from(case_page.text)}
    )
    assert response.status_code == 302
    plan = db.session.scalar(sa.select(RecoveryPlan))
    assert response.headers["Location"].endswith(f"/plans/{plan.id}/edit")
    home = client.get("/")
    assert "Continue the plan" in home.text
    assert "Continue the plan" in client.get(f"/cases/{world.case.id}").text


def test_the_form_uses_the_frameworks_spelling(world, client, login):
    plan = started(world)
    login(world.lead)
    page = client.get(f"/plans/{plan.id}/edit")
    assert page.status_code == 200
    for label in (
        "What will be done (Specific)",
        "Measure it moves (Measurable)",
        "Owner (Achievable)",
        "Domain it serves (Relevant)",
        "Due date (Time-bound)",
    ):
        assert label in page.text
    assert page.text.count('name="actions-') >= 3 * 9  # three empty action rows
    assert "Apr 2026" in page.text and "Mar 2027" in page.text  # the financial year


def test_system_tiers_plans_are_agreed_and_realistic(world, client, login, create_unit):
    from decimal import Decimal

    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.measures import Measure
    from workflow_app.services.deadlines import create_deadline

    unit = create_unit(code="ICS", name="Elective hub", framework="system_tiers", lead=world.lead)
    measure = Measure(
        unit_id=unit.id,
        domain_id=world.domains["access"].id,
        code="RTT18",
        name="RTT",
        target=Decimal(92),
        direction="higher_is_better",
    )
    case = EscalationCase(
        unit=unit, framework="system_tiers", track="measure:RTT18", level="improvement_plan"
    )
    db.session.add_all([measure, case])
    db.session.flush()
    create_deadline(
        dedupe_key="test:improvement",
        kind="improvement_plan_due",
        title="Improvement plan due",
        unit=unit,
        framework="system_tiers",
        case=case,
        working_days=15,
    )
    db.session.commit()
    plan = start_plan(world.lead, case)
    db.session.commit()
    assert plan.kind == "improvement_plan"
    login(world.lead)
    page = client.get(f"/plans/{plan.id}/edit")
    assert "Owner (Agreed)" in page.text and "Domain it serves (Realistic)" in page.text
    fields = form_fields(page.text)
    fields["actions-0-description"] = "Extra clinics"
    response = post_edit(client, plan, fields, "submit")
    assert response.status_code == 400
    assert "Action 1 is not Agreed: name the owner who will deliver it" in response.text
    assert "Action 1 is not Realistic: choose the domain it serves" in response.text


def test_add_another_action_changes_only_the_page(world, client, login):
    plan = started(world)
    login(world.lead)
    fields = form_fields(client.get(f"/plans/{plan.id}/edit").text)
    fields["summary"] = "Typed but not saved yet"
    page = post_edit(client, plan, fields, "add")
    assert page.status_code == 200
    assert 'id="actions-3-description"' in page.text  # a fourth row
    assert "Typed but not saved yet" in page.text
    assert fresh(plan).summary == ""
    fields = form_fields(page.text)
    response = post_edit(client, plan, fields, "save")
    assert response.status_code == 302
    assert fresh(plan).summary == "Typed but not saved yet"
    assert "Draft saved at" in client.get(response.headers["Location"]).text


def test_rows_can_be_removed_and_moved(world, client, login):
    plan = started(world)
    login(world.lead)
    fields = form_fields(client.get(f"/plans/{plan.id}/edit").text)
    fill_action(fields, 0, world, description="First")
    fill_action(fields, 1, world, description="Second")
    fill_action(fields, 2, world, description="Third")
    page = post_edit(client, plan, fields, "up-2")
    fields = form_fields(page.text)
    assert [fields[f"actions-{i}-description"] for i in range(3)] == ["First", "Third", "Second"]
    page = post_edit(client, plan, fields, "remove-0")
    fields = form_fields(page.text)
    assert fields["actions-0-description"] == "Third"
    assert post_edit(client, plan, fields, "save").status_code == 302
    assert [a.description for a in fresh(plan).actions] == ["Third", "Second"]


def test_submit_shows_each_smart_problem_and_keeps_the_draft(world, client, login):
    plan = started(world)
    login(world.lead)
    fields = form_fields(client.get(f"/plans/{plan.id}/edit").text)
    fields["summary"] = "A first summary"
    fields["actions-0-description"] = "Extra clinics"
    fields["actions-1-description"] = "Weekend lists"
    fields["actions-1-measure_id"] = str(world.measures["ED4"].id)
    response = post_edit(client, plan, fields, "submit")
    assert response.status_code == 400
    text = response.text
    assert "Your draft was saved, but it cannot be submitted yet" in text
    for anchor, message in (
        ("risk_assessment", "Write the risk assessment"),
        (
            "actions-0-measure_id",
            "Action 1 is not Measurable: choose the measure it moves and say by how much",
        ),
        (
            "actions-1-expected_effect",
            "Action 2 is not Measurable: say by how much it will move ED4",
        ),
        ("actions-1-due_on", "Action 2 is not Time-bound: give a due date"),
        (
            f"trajectory-{world.measures['ED4'].id}-2026-04",
            "Give at least one planned value for ED4",
        ),
    ):
        assert re.search(f'<a href="#{re.escape(anchor)}">{re.escape(message)}', text), anchor
    assert 'id="actions-1-due_on-error"' in text  # the message beside the field too
    saved = fresh(plan)
    assert saved.status == "draft" and saved.summary == "A first summary"
    assert [a.description for a in saved.actions] == ["Extra clinics", "Weekend lists"]


def test_a_date_that_is_not_a_date_stores_nothing(world, client, login):
    plan = started(world)
    login(world.lead)
    fields = form_fields(client.get(f"/plans/{plan.id}/edit").text)
    fill_action(fields, 0, world, due_on="next March")
    fields["summary"] = "Kept on the page"
    response = post_edit(client, plan, fields, "save")
    assert response.status_code == 400
    assert "Action 1: enter the due date as a real date, for example 31/03/2027" in response.text
    assert 'value="next March"' in response.text and "Kept on the page" in response.text
    assert fresh(plan).summary == ""


def test_a_complete_plan_is_submitted(world, client, login):
    plan = started(world)
    login(world.lead)
    fields = fill_plan(form_fields(client.get(f"/plans/{plan.id}/edit").text), world)
    fields["actions-0-due_on"] = "31/03/2027"  # typed without a date picker
    response = post_edit(client, plan, fields, "submit")
    assert response.status_code == 302, response.text
    assert response.headers["Location"].endswith(f"/plans/{plan.id}")
    shown = client.get(response.headers["Location"]).text
    assert "Version 1 of the plan has been submitted for review" in shown
    saved = fresh(plan)
    assert saved.status == "submitted" and saved.current_version == 1
    assert str(saved.actions[0].due_on) == "2027-03-31"
    assert client.get(f"/plans/{plan.id}/edit").status_code == 302  # not editable now


def test_who_may_see_and_write_a_plan(world, client, login, app):
    plan = started(world)
    login(world.other_lead)
    for url in (f"/plans/{plan.id}", f"/plans/{plan.id}/edit", f"/plans/{plan.id}/review"):
        assert client.get(url).status_code == 404, url
    token = csrf_from(client.get("/").text)
    assert (
        client.post(f"/plans/start/{world.case.id}", data={"csrf_token": token}).status_code == 404
    )
    executive = app.test_client()
    sign_in(executive, world.executive.email)
    assert executive.get(f"/plans/{plan.id}").status_code == 200
    refused = executive.get(f"/plans/{plan.id}/edit")
    assert refused.status_code == 403
    assert "Only Surgery&#39;s lead or budget holder" in refused.text
    assert "Write the plan" not in executive.get(f"/cases/{world.case.id}").text


def test_two_people_saving_at_once_gives_a_clear_conflict(world, client, login, app):
    plan = started(world)
    login(world.lead)
    mine = form_fields(client.get(f"/plans/{plan.id}/edit").text)
    other = app.test_client()
    sign_in(other, world.reviewer.email)
    theirs = form_fields(other.get(f"/plans/{plan.id}/edit").text)
    theirs["summary"] = "The performance team's summary"
    assert post_edit(other, plan, theirs, "save").status_code == 302
    mine["summary"] = "My own summary, typed carefully"
    response = post_edit(client, plan, mine, "save")
    assert response.status_code == 409
    assert "This plan was changed by Pat Performance at" in response.text
    assert "My own summary, typed carefully" in response.text
    assert fresh(plan).summary == "The performance team's summary"
    # Pressing Save again, having seen the message, replaces their text with mine.
    again = form_fields(response.text)
    assert post_edit(client, plan, again, "save").status_code == 302
    assert fresh(plan).summary == "My own summary, typed carefully"


def test_the_review_pages_return_resubmit_and_approve(world, client, login, app):
    plan = started(world)
    save_draft(world.lead, plan, world.smart_data(), plan.lock_version)
    submit(world.lead, plan)
    db.session.commit()
    first_id = plan.actions[0].id

    reviewer = app.test_client()
    sign_in(reviewer, world.reviewer.email)
    home = reviewer.get("/").text
    assert "Plans waiting for your review" in home and plan.title in home
    show = reviewer.get(f"/plans/{plan.id}").text
    assert "Start the review" in show
    response = reviewer.post(f"/plans/{plan.id}/start-review", data={"csrf_token": csrf_from(show)})
    assert response.headers["Location"].endswith(f"/plans/{plan.id}/review")
    page = reviewer.get(f"/plans/{plan.id}/review").text
    fields = form_fields(page, r"/review$")
    assert f"comment-{first_id}" in fields
    fields.update(
        {
            "overall_note": "Good start.",
            f"comment-{first_id}": "Which weekends, and from when?",
            "outcome": "return",
        }
    )
    assert reviewer.post(f"/plans/{plan.id}/review", data=fields).status_code == 302
    assert fresh(plan).status == "returned"

    login(world.lead)
    assert "plan returned with comments" in client.get("/").text
    page = client.get(f"/plans/{plan.id}/edit").text
    assert "Which weekends, and from when?" in page and "Good start." in page
    fields = form_fields(page)
    fields["actions-0-description"] = "Run Saturday theatre lists for orthopaedics"
    assert post_edit(client, plan, fields, "submit").status_code == 302
    assert fresh(plan).current_version == 2

    page = reviewer.get(f"/plans/{plan.id}/review").text
    assert "What changed since version 1" in page
    assert "weekend</del>" in page and "Saturday</ins>" in page
    assert "Which weekends, and from when?" in page  # what was asked, beside the action
    show = reviewer.get(f"/plans/{plan.id}").text
    reviewer.post(f"/plans/{plan.id}/start-review", data={"csrf_token": csrf_from(show)})
    fields = form_fields(reviewer.get(f"/plans/{plan.id}/review").text, r"/review$")
    fields["outcome"] = "approve"
    response = reviewer.post(f"/plans/{plan.id}/review", data=fields)
    assert response.status_code == 302
    assert "now in delivery" in reviewer.get(response.headers["Location"]).text
    assert fresh(plan).status == "in_delivery"
    versions = reviewer.get(f"/plans/{plan.id}/versions/1").text
    assert "Which weekends, and from when?" in versions and "matches the content" in versions


def test_returning_without_a_comment_keeps_the_reviewer_on_the_page(world, app, draft):
    submit(world.lead, draft)
    db.session.commit()
    reviewer = app.test_client()
    sign_in(reviewer, world.reviewer.email)
    show = reviewer.get(f"/plans/{draft.id}").text
    reviewer.post(f"/plans/{draft.id}/start-review", data={"csrf_token": csrf_from(show)})
    fields = form_fields(reviewer.get(f"/plans/{draft.id}/review").text, r"/review$")
    fields["outcome"] = "return"
    response = reviewer.post(f"/plans/{draft.id}/review", data=fields)
    assert response.status_code == 400
    assert "Write what needs to change" in response.text
    assert fresh(draft).status == "in_review"


def test_the_submitter_cannot_review_their_own_version(world, app):
    plan = start_plan(world.reviewer, world.case)
    save_draft(world.reviewer, plan, world.smart_data(), plan.lock_version)
    submit(world.reviewer, plan)
    db.session.commit()
    reviewer = app.test_client()
    sign_in(reviewer, world.reviewer.email)
    show = reviewer.get(f"/plans/{plan.id}").text
    assert "You submitted this version of the plan, so someone else must review it." in show
    assert "Start the review" not in show
    fields = {"csrf_token": csrf_from(show), "outcome": "approve", "overall_note": "Fine"}
    assert reviewer.post(f"/plans/{plan.id}/review", data=fields).status_code == 403
    assert fresh(plan).status == "submitted"
