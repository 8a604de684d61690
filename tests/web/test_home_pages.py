"""Home pages per role (issue 8) on the security world: unit B at 2b on finance (the CEO
signed) and 2a on performance (an executive signed), its letters, deadlines, a requested
Budget Review Meeting and a recovery plan its lead started; unit A led by another lead."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.conftest import sign_in
from tests.security.conftest import DECIDED_AT, build_world
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase, LevelChange
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Unit
from workflow_app.services.register import time_at_level


@pytest.fixture
def world(app, clock, create_person, create_unit, create_domain):
    clock.move_to(DECIDED_AT)
    return build_world(create_person, create_unit, create_domain)


def home_of(app, person) -> str:
    """The main part of ``person``'s home page, signed in afresh (at the clock's time)."""
    client = app.test_client()
    assert sign_in(client, person.email).status_code == 302
    response = client.get("/")
    assert response.status_code == 200
    return main_of(response.text)


def main_of(page: str) -> str:
    return page[page.index("<main") : page.index("</main>")]


def section(main: str, heading: str) -> str:
    """The HTML from the <h2> ``heading`` to the next <h2>."""
    start = main.index(f">{heading}</h2>")
    end = main.find("<h2", start)
    return main[start : end if end != -1 else None]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def case_b(track: str) -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase).join(Unit).where(Unit.code == "UB", EscalationCase.track == track)
    )


def test_ceo_sees_decisions_awaiting_units_by_level_and_how_long(app, clock, world):
    from workflow_app.services.decisions import raise_escalation

    people = world.people
    raise_escalation(
        people["performance_team"],
        case_b("performance"),
        to_level="3",
        reason="No improvement since the plan",
        evidence_note="RTT18 at 70%",
    )
    db.session.commit()
    clock.move_to(DECIDED_AT + timedelta(days=62))

    main = home_of(app, people["ceo"])
    assert "<h1>Chief Executive overview</h1>" in main
    awaiting = text(section(main, "Decisions awaiting your signature"))
    assert "Unit B" in awaiting and "Level 2a → Level 3" in awaiting
    assert "Chief Executive" in awaiting  # the capacity the CEO signs in
    by_level = text(section(main, "Units by level"))
    # Unit B's headline level: 2a and 2b stand at the same height; either names it once.
    assert re.search(r"Level 2[ab][^0-9]*\s1 unit\b", by_level), by_level
    assert re.search(r"Level 1: Normal arrangements\s+1 unit\b", by_level), by_level
    register = text(section(main, "Register of escalation levels"))
    assert "since Nov 2026 (2 months)" in register
    open_cases = text(section(main, "Open escalations"))
    assert "23 Nov 2026" in open_cases and "2 months" in open_cases


def test_overdue_obligations_and_meetings_reach_the_executive(app, clock, world):
    from workflow_app.services.meetings import schedule_meeting

    plan_due = db.session.scalar(
        sa.select(Deadline).where(Deadline.title.like("Recovery plan due%"))
    )
    meeting = db.session.scalar(sa.select(Meeting).order_by(Meeting.id))
    # The first Wednesday a week after the plan was due, 10:00 UTC (GMT: 10:00 in London).
    start = (plan_due.due_at + timedelta(days=7)).replace(hour=10, minute=0)
    start += timedelta(days=(2 - start.weekday()) % 7)
    schedule_meeting(world.people["ceo"], meeting, start, start + timedelta(hours=1), "Room 4")
    db.session.commit()
    clock.move_to(plan_due.due_at + timedelta(hours=1))

    main = home_of(app, world.people["executive_director"])
    overdue = section(main, "Overdue obligations")
    assert "Recovery plan due" in overdue and "Overdue" in overdue
    meetings = text(section(main, "Upcoming meetings"))
    assert meeting.title in meetings
    assert f"10:00 on Wednesday {start.day} {start:%B %Y}" in meetings


def test_a_lead_sees_only_their_units_obligations_and_letters(app, world):
    main_b = home_of(app, world.lead_b)
    assert "<h1>Your units</h1>" in main_b
    obligations = text(section(main_b, "Your obligations"))
    assert "Recovery plan due" in obligations
    letters = text(section(main_b, "Your letters"))
    for reference in db.session.scalars(sa.select(Letter.reference)):
        assert reference in letters
    assert "Unit A" not in main_b

    main_a = home_of(app, world.people["directorate_lead"])
    assert "Unit A" in main_a
    assert "Unit B" not in main_a
    assert "No letters have been issued about your units." in main_a
    assert "Decisions awaiting" not in main_a and "Units by level" not in main_a


def test_committee_member_sees_the_register_read_only(app, world):
    main = home_of(app, world.people["committee_member"])
    assert "<h1>Committee assurance</h1>" in main
    assert "read-only" in main
    assert "<form" not in main and "<button" not in main and "<input" not in main
    register = text(section(main, "Register of escalation levels"))
    assert "Unit A" in register and "Unit B" in register
    assert "Level 2b (Financial)" in register
    assert "Decisions awaiting" not in main
    if "reports.index" in app.view_functions:  # the board reports, once installed
        assert 'href="/reports' in main


def test_the_home_page_makes_the_same_number_of_queries_for_more_units(app, world, create_unit):
    """No N+1: the register and dashboard load per kind of record, not per unit."""
    ceo = world.people["ceo"]
    client = app.test_client()
    assert sign_in(client, ceo.email).status_code == 302

    def statements() -> int:
        count = 0

        def tally(*_args, **_kwargs):
            nonlocal count
            count += 1

        event.listen(db.engine, "before_cursor_execute", tally)
        try:
            assert client.get("/").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", tally)
        return count

    before = statements()
    for number in range(6):
        unit = create_unit(code=f"X{number}", name=f"Extra {number}")
        case = db.session.scalar(
            sa.select(EscalationCase).where(
                EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
            )
        )
        case.level = "2a"
        db.session.add(LevelChange(case_id=case.id, from_level="1", to_level="2a"))
    db.session.commit()
    after = statements()
    assert after == before
    assert "Extra 5" in client.get("/").text


@pytest.mark.parametrize(
    ("since", "now", "words"),
    [
        (
            datetime(2026, 3, 1, 9, tzinfo=UTC),
            datetime(2026, 3, 1, 17, tzinfo=UTC),
            "less than a day",
        ),
        (datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC), "1 day"),
        (datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC), "28 days"),
        (datetime(2026, 1, 15, 9, tzinfo=UTC), datetime(2026, 4, 15, 9, tzinfo=UTC), "3 months"),
        (
            datetime(2025, 1, 15, 9, tzinfo=UTC),
            datetime(2026, 3, 20, 9, tzinfo=UTC),
            "1 year 2 months",
        ),
        (datetime(2024, 5, 1, 9, tzinfo=UTC), datetime(2026, 5, 1, 9, tzinfo=UTC), "2 years"),
        # 23:30 UTC on 31 May is already 1 June in London (BST): one month, not zero.
        (datetime(2026, 5, 31, 23, 30, tzinfo=UTC), datetime(2026, 7, 1, 9, tzinfo=UTC), "1 month"),
    ],
)
def test_time_at_level_in_words(since, now, words):
    assert time_at_level(since, now) == words
