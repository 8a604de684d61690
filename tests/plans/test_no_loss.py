"""No work lost: a stale or missing CSRF token, or an expired session, gives the page back with
everything typed and a message, and stores nothing (docs/decisions/0015)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sign_in
from tests.plans.forms import fill_plan, form_fields
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.plans import PlanReviewComment, RecoveryPlan
from workflow_app.services.plans import start_plan, start_review, submit

LONG_TEXT = (
    "Referral to treatment has fallen below 80% for three months because two consultants "
    "left in the summer; weekend lists & validation will recover it <by March>."
)


@pytest.fixture
def plan(world):
    plan = start_plan(world.lead, world.case)
    db.session.commit()
    return plan


def stored(plan) -> tuple:
    """What a save would change: the plan's text, lock and actions, and its audit events."""
    db.session.expire_all()
    row = db.session.get(RecoveryPlan, plan.id)
    events = db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.object_type == "plan")
    )
    return row.summary, row.lock_version, len(row.actions), events


def typed_form(client, plan, world) -> dict[str, str]:
    fields = fill_plan(form_fields(client.get(f"/plans/{plan.id}/edit").text), world)
    fields["summary"] = LONG_TEXT
    fields["actions-0-description"] = "Weekend lists – every Saturday from January"
    return fields


@pytest.mark.parametrize("token", ["stale", "missing", "from another session"])
@pytest.mark.parametrize("do", ["save", "submit"])
def test_a_bad_csrf_token_gives_everything_back_and_stores_nothing(
    world, plan, client, login, app, token, do
):
    login(world.lead)
    fields = typed_form(client, plan, world)
    if token == "stale":
        fields["csrf_token"] = fields["csrf_token"][:-6] + "AAAAAA"
    elif token == "missing":
        del fields["csrf_token"]
    else:
        other = app.test_client()
        sign_in(other, world.lead.email)
        fields["csrf_token"] = csrf_from(other.get("/").text)
    before = stored(plan)
    response = client.post(f"/plans/{plan.id}/edit", data={**fields, "do": do})
    assert response.status_code == 400
    assert "The form was out of date" in response.text
    assert "nothing was saved" in response.text
    button = "Submit for review" if do == "submit" else "Save draft"
    assert f"press {button} again" in response.text
    back = form_fields(response.text)
    assert back["summary"] == LONG_TEXT
    assert back["actions-0-description"] == "Weekend lists – every Saturday from January"
    assert back["actions-0-due_on"] == "2027-03-31"
    assert back[f"trajectory-{world.measures['RTT18'].id}-2027-03"] == "85"
    assert back["csrf_token"] and back["csrf_token"] != fields.get("csrf_token")
    assert stored(plan) == before
    # The page came back with a fresh token: pressing the button again now works.
    again = client.post(f"/plans/{plan.id}/edit", data={**back, "do": "save"})
    assert again.status_code == 302
    assert stored(plan)[0] == LONG_TEXT


def test_an_expired_session_gives_the_text_back_with_a_sign_in_link(
    world, plan, client, login, clock
):
    login(world.lead)
    fields = typed_form(client, plan, world)
    before = stored(plan)
    clock.shift(timedelta(hours=9))  # past SESSION_LIFETIME_SECONDS (8 hours)
    response = client.post(f"/plans/{plan.id}/edit", data={**fields, "do": "save"})
    assert response.status_code == 401
    text = response.text
    assert "Your session has expired, so nothing was saved" in text
    assert "Sign in again (opens in a new tab)" in text
    assert "/auth/login?next=" in text
    assert (
        "left in the summer; weekend lists &amp; validation will recover it &lt;by March&gt;."
        in text
    )
    assert stored(plan) == before
    # Nothing about the plan is shown to someone who is not signed in, only what they typed.
    assert "Surgery" not in text and "Four-hour" not in text

    # Signed in again (in another tab), the rescued page is sent: the form comes back whole,
    # with a fresh token, and the next press saves it.
    rescued = form_fields(text, r"/plans/\d+/edit$")
    assert rescued["summary"] == LONG_TEXT
    login(world.lead)
    page = client.post(f"/plans/{plan.id}/edit", data=rescued)
    assert page.status_code == 400 and "The form was out of date" in page.text
    back = form_fields(page.text)
    assert back["summary"] == LONG_TEXT
    assert back["actions-0-measure_id"] == str(world.measures["RTT18"].id)
    assert back[f"trajectory-{world.measures['RTT18'].id}-2026-12"] == "78"
    assert stored(plan) == before
    assert client.post(f"/plans/{plan.id}/edit", data={**back, "do": "save"}).status_code == 302
    db.session.expire_all()
    saved = db.session.get(RecoveryPlan, plan.id)
    assert saved.summary == LONG_TEXT and saved.actions[0].measure_id == world.measures["RTT18"].id


def test_signed_out_the_form_page_still_asks_to_sign_in(plan, client):
    response = client.get(f"/plans/{plan.id}/edit")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_a_stale_review_form_keeps_the_reviewers_comments(world, plan, app):
    from workflow_app.services.plans import save_draft

    save_draft(world.lead, plan, world.smart_data(), plan.lock_version)
    submit(world.lead, plan)
    start_review(world.reviewer, plan)
    db.session.commit()
    action_id = plan.actions[0].id
    reviewer = app.test_client()
    sign_in(reviewer, world.reviewer.email)
    fields = form_fields(reviewer.get(f"/plans/{plan.id}/review").text, r"/review$")
    fields.update(
        {
            "csrf_token": "expired-token",
            "overall_note": "A long overall comment I do not want to type twice.",
            f"comment-{action_id}": "Which weekends?",
            "outcome": "return",
        }
    )
    response = reviewer.post(f"/plans/{plan.id}/review", data=fields)
    assert response.status_code == 400
    assert "press Return with comments again" in response.text
    back = form_fields(response.text, r"/review$")
    assert back["overall_note"] == "A long overall comment I do not want to type twice."
    assert back[f"comment-{action_id}"] == "Which weekends?"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PlanReviewComment)) == 0
    db.session.expire_all()
    assert db.session.get(RecoveryPlan, plan.id).status == "in_review"

    expired = app.test_client()  # no session at all
    response = expired.post(f"/plans/{plan.id}/review", data=fields)
    assert response.status_code == 401
    assert "Your review has not been sent" in response.text
    assert "Which weekends?" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PlanReviewComment)) == 0
