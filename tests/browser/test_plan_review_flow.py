"""Browser: a directorate lead writes a recovery plan (meeting a SMART error on the way), saves
a draft and submits it; a reviewer returns it with a comment on an action; the lead resubmits;
the reviewer reads what changed and approves it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db

pytestmark = pytest.mark.browser

SUCCESS = ".nhsuk-notification-banner--success"
PROBLEM = ".nhsuk-error-summary"


@pytest.fixture
def plan_server(live_server):
    """The live app with Surgery at Level 2a on performance and its recovery plan due."""
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.measures import Measure
    from workflow_app.models.org import Domain, Person, RoleGrant, Unit
    from workflow_app.services.decisions import decide_proposal, raise_escalation
    from workflow_app.services.org import open_cases_for_unit
    from workflow_app.services.passwords import hash_password

    base_url, app = live_server
    with app.app_context():
        people = {}
        for key, name, role in (
            ("lead", "Lee Lead", "directorate_lead"),
            ("exec", "Eve Exec", "executive_director"),
            ("perf", "Pat Performance", "performance_team"),
        ):
            person = Person(
                name=name, email=f"{key}@example.nhs.uk", password_hash=hash_password(PASSWORD)
            )
            person.grants = [RoleGrant(role=role)]
            db.session.add(person)
            people[key] = person
        domain = Domain(code="access_activity", name="Access & Activity")
        db.session.add(domain)
        db.session.flush()
        unit = Unit(
            code="SURG",
            name="Surgery",
            kind="operational_directorate",
            framework="iqpf",
            lead_id=people["lead"].id,
            budget_holder_id=people["lead"].id,
            accountable_executive_id=people["exec"].id,
        )
        db.session.add(unit)
        db.session.flush()
        open_cases_for_unit(unit)
        measure = Measure(
            unit_id=unit.id,
            domain_id=domain.id,
            code="RTT18",
            name="Referral to treatment in 18 weeks",
            kind="national_target",
            target=Decimal(92),
            direction="higher_is_better",
            unit_of_measure="percent",
        )
        db.session.add(measure)
        db.session.commit()
        case = db.session.scalar(
            sa.select(EscalationCase).where(
                EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
            )
        )
        decision = raise_escalation(
            people["exec"],
            case,
            to_level="2a",
            reason="RTT below target for three months",
            evidence_note="RTT18 at 76%, 77%, 76%",
        )
        db.session.commit()
        decide_proposal(
            people["exec"],
            decision,
            outcome="approve",
            reason="Sustained deterioration",
            password=PASSWORD,
            meeting_reference="Executive Team, item 4",
        )
        db.session.commit()
        ids = {"measure": measure.id, "lead": people["lead"].id, "domain": domain.id}
        db.session.remove()

    def plan_state():
        from workflow_app.models.plans import RecoveryPlan

        with app.app_context():
            try:
                plan = db.session.scalar(sa.select(RecoveryPlan))
                return (plan.status, plan.current_version) if plan else None
            finally:
                db.session.remove()

    return base_url, ids, plan_state


def sign_in(page, base_url: str, who: str) -> None:
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("E-mail address").fill(f"{who}@example.nhs.uk")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/auth/login" not in page.url


def press(page, name: str) -> int:
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=name, exact=True).click()
    return navigation.value.status


@pytest.fixture
def reviewer_page(browser):
    """A second browser (its own cookies) for the reviewer: two people, two sessions."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_plan_is_written_returned_resubmitted_and_approved(page, reviewer_page, plan_server):
    base_url, ids, plan_state = plan_server
    due_on = (date.today() + timedelta(days=60)).isoformat()
    lead = page

    # The lead sees the plan due on their home page and starts writing it.
    sign_in(page, base_url, "lead")
    card = page.locator(".escalate-plan-due")
    assert card.get_by_role("heading").inner_text().startswith("Recovery plan due ")
    press(page, "Write the plan for Surgery")
    assert page.get_by_role("heading", level=1).inner_text() == "Write the plan"

    page.get_by_label("Summary").fill("Referral to treatment below 80% for three months.")
    page.get_by_label("Risk assessment").fill("Long waits risk harm; clinical list review.")
    page.get_by_label("Risk to quality and safety").select_option("high")
    page.locator("#actions-0-description").fill("Run weekend theatre lists for orthopaedics")
    page.locator("#actions-0-measure_id").select_option(str(ids["measure"]))
    page.locator("#actions-0-owner_id").select_option(str(ids["lead"]))
    page.locator("#actions-0-resources").fill("Theatre staff overtime")
    page.locator("#actions-0-domain_id").select_option(str(ids["domain"]))
    page.locator("#actions-0-due_on").fill(due_on)
    page.locator(f"input[name^='trajectory-{ids['measure']}-']").last.fill("85")

    # Submitting without saying by how much: a SMART error, and the draft is kept.
    assert press(page, "Submit for review") == 400
    problem = page.locator(PROBLEM).inner_text()
    assert "Your draft was saved, but it cannot be submitted yet" in problem
    assert "Action 1 is not Measurable: say by how much it will move RTT18" in problem
    assert plan_state() == ("draft", 0)

    page.locator("#actions-0-expected_effect").fill("from 76% to 85%")
    press(page, "Save draft")
    assert "Draft saved at" in page.locator(SUCCESS).inner_text()
    press(page, "Submit for review")
    assert "Version 1 of the plan has been submitted" in page.locator(SUCCESS).inner_text()
    assert plan_state() == ("submitted", 1)

    # The reviewer returns it with a comment on action 1.
    page = reviewer_page
    sign_in(page, base_url, "perf")
    waiting = page.locator("table", has=page.locator("caption", has_text="Plans submitted"))
    with page.expect_navigation():
        waiting.get_by_role("link").first.click()
    press(page, "Start the review")
    assert page.get_by_role("heading", level=1).inner_text() == "Review the plan"
    page.get_by_label("Your comment on action 1 (optional)").fill("Which weekends, from when?")
    page.get_by_label("Your overall comment").fill("Good start; add dates.")
    press(page, "Return with comments")
    assert "returned with your comments" in page.locator(SUCCESS).inner_text()
    assert plan_state() == ("returned", 1)

    # The lead reads the comment beside the action, changes it and resubmits.
    page = lead
    page.goto(f"{base_url}/")
    with page.expect_navigation():
        page.get_by_role("link", name="Change the plan for Surgery").click()
    assert "Which weekends, from when?" in page.locator("main").inner_text()
    page.locator("#actions-0-description").fill("Run Saturday theatre lists for orthopaedics")
    press(page, "Submit for review")
    assert "Version 2 of the plan has been submitted" in page.locator(SUCCESS).inner_text()

    # The reviewer sees what changed and approves.
    page = reviewer_page
    page.goto(f"{base_url}/")
    waiting = page.locator("table", has=page.locator("caption", has_text="Plans submitted"))
    with page.expect_navigation():
        waiting.get_by_role("link").first.click()
    press(page, "Start the review")
    changes = page.locator("main").inner_text()
    assert "What changed since version 1" in changes
    assert page.locator(".escalate-diff del", has_text="weekend").count() >= 1
    assert page.locator(".escalate-diff ins", has_text="Saturday").count() >= 1
    press(page, "Approve the plan")
    assert "approved and now in delivery" in page.locator(SUCCESS).inner_text()
    assert page.locator("main .nhsuk-tag", has_text="In delivery").count() >= 1
    assert plan_state() == ("in_delivery", 2)
