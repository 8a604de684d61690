"""The case timeline (issue 8): every event of a case in order, with who and when."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.conftest import sign_in
from tests.security.conftest import DECIDED_AT, build_world
from workflow_app.extensions import db
from workflow_app.models.letters import Letter


@pytest.fixture
def world(app, clock, create_person, create_unit, create_domain):
    clock.move_to(DECIDED_AT)
    return build_world(create_person, create_unit, create_domain)


def timeline_items(page: str) -> list[tuple[datetime, str]]:
    """(time, text) of each event in the page's timeline, in page order."""
    start = page.index('<ol class="escalate-timeline">')
    block = page[start : page.index("</ol>", start)]
    items = []
    for item in re.findall(r"<li class=\"escalate-timeline__event.*?</li>", block, re.S):
        stamp = re.search(r'<time datetime="([^"]+)"', item).group(1)
        words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
        items.append((datetime.strptime(stamp, "%Y-%m-%dT%H:%M%z"), words))
    return items


def test_the_case_timeline_lists_every_event_in_order_with_who_and_when(app, world):
    client = app.test_client()
    assert sign_in(client, world.people["committee_member"].email).status_code == 302
    response = client.get(f"/cases/{world.ids['case_id']}")
    assert response.status_code == 200
    items = timeline_items(response.text)
    times = [at for at, _ in items]
    assert times == sorted(times)
    texts = [words for _, words in items]

    def index_of(*fragments: str) -> int:
        for number, words in enumerate(texts):
            if all(fragment in words for fragment in fragments):
                return number
        raise AssertionError(f"no event with {fragments} in {texts}")

    opened = index_of("Case opened")
    proposed = index_of(
        "Proposed: Level 1: Normal arrangements → Level 2a", "The executive director"
    )
    signed = index_of("Signed:", "The executive director as Executive Director")
    level = index_of("· Level Level 1: Normal arrangements → Level 2a", "The executive director")
    letter = db.session.scalar(
        sa.select(Letter).where(Letter.case_id == world.ids["case_id"]).order_by(Letter.id)
    )
    issued = index_of("Letter issued", letter.reference)
    plan = index_of("started as a draft", "Lead of B")
    assert opened < proposed < signed <= level < plan
    assert issued > opened
    index_of("Deadline set: Recovery plan due", "owner Lead of B")
    # Times are shown in Europe/London: 23 Nov 2026 is GMT, so 10:00 UTC reads 10:00.
    assert texts[signed].startswith("23 Nov 2026, 10:00")
    # The finance case's events belong to the finance case, not this one.
    assert not any("Level 2b" in words for words in texts)


def test_a_lead_of_another_unit_gets_404_for_the_case(app, world):
    client = app.test_client()
    assert sign_in(client, world.people["directorate_lead"].email).status_code == 302
    response = client.get(f"/cases/{world.ids['case_id']}")
    assert response.status_code == 404
    assert "escalate-timeline" not in response.text
    assert "Unit B" not in response.text


def test_the_units_own_lead_sees_the_timeline(app, world):
    client = app.test_client()
    assert sign_in(client, world.lead_b.email).status_code == 302
    response = client.get(f"/cases/{world.ids['case_id']}")
    assert response.status_code == 200
    assert any("started as a draft" in words for _, words in timeline_items(response.text))
