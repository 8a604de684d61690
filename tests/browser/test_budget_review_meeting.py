"""Browser: the CEO opens the Budget Review Meeting a Level 2b decision asked for, picks one of
the proposed slots, schedules it and sees that the invitations were sent."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db

pytestmark = pytest.mark.browser


@pytest.fixture
def meeting_server(live_server):
    """The live app with a unit just moved to Level 2b: its Budget Review Meeting requested."""
    from workflow_app.models.measures import FinancePosition
    from workflow_app.models.meetings import Meeting
    from workflow_app.models.org import Person, RoleGrant, Unit
    from workflow_app.services.decisions import decide_proposal
    from workflow_app.services.org import open_cases_for_unit
    from workflow_app.services.passwords import hash_password
    from workflow_app.services.review import run_review

    base_url, app = live_server
    with app.app_context():
        hashed = hash_password(PASSWORD)

        def person(name, email, *roles):
            p = Person(name=name, email=email, password_hash=hashed)
            p.grants = [RoleGrant(role=r) for r in roles]
            db.session.add(p)
            return p

        ceo = person("Carys Chief", "ceo@example.nhs.uk", "ceo")
        person("Eve Exec", "eve@example.nhs.uk", "executive_director")
        person("Finn Finance", "finn@example.nhs.uk", "executive_director")
        holder = person("Bea Budget", "bea@example.nhs.uk", "directorate_lead")
        db.session.flush()
        unit = Unit(
            code="SURG",
            name="Surgery",
            kind="operational_directorate",
            framework="iqpf",
            lead_id=holder.id,
            budget_holder_id=holder.id,
        )
        db.session.add(unit)
        db.session.flush()
        open_cases_for_unit(unit)
        db.session.add(
            FinancePosition(
                unit_id=unit.id,
                period=date(2026, 10, 1),
                ytd_variance=742_310,
                forecast_variance=968_400,
            )
        )
        db.session.commit()
        (proposal,) = run_review(date(2026, 10, 1)).created
        db.session.commit()
        decide_proposal(
            ceo, proposal, outcome="approve", reason="Overspend confirmed", password=PASSWORD
        )
        db.session.commit()
        meeting_id = db.session.scalar(sa.select(Meeting.id))
        db.session.remove()

    def state():
        from workflow_app.models.outbox import OutboxMessage

        with app.app_context():
            try:
                meeting = db.session.get(Meeting, meeting_id)
                invites = db.session.scalars(
                    sa.select(OutboxMessage.to_address).where(
                        OutboxMessage.kind == "meeting_invitation"
                    )
                ).all()
                return meeting.status, meeting.location, sorted(invites)
            finally:
                db.session.remove()

    return base_url, meeting_id, state


def test_the_ceo_schedules_the_budget_review_meeting(page, meeting_server):
    base_url, meeting_id, state = meeting_server
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("E-mail address").fill("ceo@example.nhs.uk")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()

    # Meetings, in the navigation: the meeting waits to be scheduled
    with page.expect_navigation():
        page.get_by_role("navigation", name="Menu").get_by_role("link", name="Meetings").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Meetings"
    with page.expect_navigation():
        page.get_by_role("link", name="Budget Review Meeting: Surgery").click()
    assert page.url.endswith(f"/meetings/{meeting_id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Budget Review Meeting: Surgery"
    main = page.inner_text("main")
    assert "To be scheduled" in main
    for name in ("Carys Chief", "Eve Exec", "Finn Finance", "Bea Budget"):
        assert name in main

    # the proposed slots are radios; pick the second one
    slots = page.get_by_role("group", name="Choose a time").get_by_role("radio")
    assert slots.count() >= 2  # proposed times plus "Another date and time"
    chosen = slots.nth(1)
    label = page.locator(f"label[for='{chosen.get_attribute('id')}']").inner_text()
    chosen.check()
    page.get_by_label("Where").fill("Board room, Bronllys")
    with page.expect_navigation():
        page.get_by_role("button", name="Schedule and send invitations").click()

    banner = page.inner_text("main")
    assert "Invitations have been sent to 4 people" in banner
    assert label.split(",")[0] in banner  # "Scheduled for <day date>, <time>"
    assert "Scheduled" in banner
    assert "Download the calendar event (.ics)" in banner
    status, location, invites = state()
    assert (status, location) == ("scheduled", "Board room, Bronllys")
    assert invites == sorted(
        ["ceo@example.nhs.uk", "eve@example.nhs.uk", "finn@example.nhs.uk", "bea@example.nhs.uk"]
    )
