"""The home page and Units keep their register parts in a cache of rendered fragments
(decision 0037): it must never show a level, unit or decision that has changed, whichever
worker the change went through, and it stays bounded."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import PASSWORD, sign_in
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.web.fragments import FragmentCache


def performance_case(unit) -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
        )
    )


def escalate(executive, unit) -> None:
    """Raise and approve 1 -> 2a on the unit's performance track through the services."""
    from workflow_app.services.decisions import decide_proposal, raise_escalation

    decision = raise_escalation(
        executive, performance_case(unit), to_level="2a", reason="Below target", evidence_note="x"
    )
    db.session.commit()
    decide_proposal(
        executive,
        decision,
        outcome="approve",
        reason="Agreed",
        password=PASSWORD,
        meeting_reference="Executive Team, item 1",
    )
    db.session.commit()


def open_escalations(html: str) -> str:
    start = html.index(">Open escalations</h2>")
    return html[start : html.index("<h2", start)]


def test_a_decision_shows_at_once_on_every_worker(make_app, app, create_person, create_unit):
    """Two apps on one database stand for two gunicorn workers: each checks the data
    version on every request, so neither shows a cached page from before the decision."""
    executive = create_person("executive_director")
    unit = create_unit(code="C001", name="Cardiology")
    worker_a, worker_b = app, make_app()
    clients = [worker_a.test_client(), worker_b.test_client()]
    for client in clients:
        assert sign_in(client, executive.email).status_code == 302
        page = client.get("/").text
        assert "0 open escalations" in page
        assert "No unit you can see is escalated" in page
    for worker in (worker_a, worker_b):  # each worker keeps its own fragments
        assert len(worker.extensions["escalate_fragments"]) > 0

    escalate(executive, unit)

    for client in clients:
        page = client.get("/").text
        assert "1 open escalation." in page
        assert "Cardiology" in open_escalations(page)
        assert "Level 2a" in client.get("/units/").text


def test_a_renamed_unit_is_not_served_stale(app, create_person, create_unit):
    from workflow_app.services.org import update_unit

    team = create_person("performance_team")
    unit = create_unit(code="C001", name="Cardiology")
    client = app.test_client()
    assert sign_in(client, team.email).status_code == 302
    assert "Cardiology" in client.get("/units/").text
    update_unit(team, unit, name="Heart services")
    db.session.commit()
    page = client.get("/units/").text
    assert "Heart services" in page and "Cardiology" not in page


def test_open_escalations_are_paged_with_a_link_to_the_rest(
    app, client, create_person, create_unit
):
    ceo = create_person("ceo")
    for n in range(1, 56):
        unit = create_unit(code=f"E{n:03d}", name=f"Escalated {n}")
        performance_case(unit).level = "2a"
    db.session.commit()
    assert sign_in(client, ceo.email).status_code == 302

    home = client.get("/").text
    assert "55 open escalations" in home
    table = open_escalations(home)
    assert len(re.findall(r'href="/cases/\d+"', table)) == 50
    assert "The rest of the open escalations: 5 more" in table
    assert 'href="/units/?view=escalations&amp;page=2"' in table

    rest = client.get("/units/?view=escalations&page=2")
    assert rest.status_code == 200
    assert "page 2 of 2" in rest.text
    names = re.findall(r">(Escalated \d+)<span", rest.text)
    assert names == [f"Escalated {n}" for n in range(51, 56)]
    assert 'href="/units/?view=escalations&amp;page=1"' in rest.text


def test_a_lead_sees_only_their_own_open_escalations(app, client, create_person, create_unit):
    lead = create_person("directorate_lead")
    mine = create_unit(code="M001", name="Mine", lead=lead)
    other = create_unit(code="O001", name="Other")
    performance_case(mine).level = "2a"
    performance_case(other).level = "3"
    db.session.commit()
    assert sign_in(client, lead.email).status_code == 302
    page = client.get("/units/?view=escalations").text
    assert "Mine" in page and "Other" not in page
    assert "Other" not in client.get("/").text


def test_the_fragment_cache_is_bounded():
    cache = FragmentCache(maxsize=3)
    for n in range(5):
        cache.put(n, str(n))
    assert len(cache) == 3
    assert cache.get(0) is None and cache.get(4) == "4"
    cache.get(2)  # recently used: kept when the next one comes in
    cache.put(5, "5")
    assert cache.get(2) == "2" and cache.get(3) is None


def test_overdue_obligations_follow_the_clock_and_every_change(
    app, clock, create_person, create_unit
):
    """The diary fragment is kept for a minute at most, and a completed obligation leaves
    it at the next request."""
    from datetime import timedelta

    from workflow_app.clock import utcnow
    from workflow_app.services.deadlines import create_deadline, mark_done

    executive = create_person("executive_director")
    unit = create_unit(code="C001", name="Cardiology")
    deadline = create_deadline(
        dedupe_key="test:plan",
        kind="custom",
        title="Recovery plan due",
        unit=unit,
        framework="iqpf",
        due_at=utcnow() + timedelta(minutes=30),
    )
    db.session.commit()
    client = app.test_client()
    assert sign_in(client, executive.email).status_code == 302

    def overdue() -> str:
        page = client.get("/").text
        start = page.index(">Overdue obligations</h2>")
        return page[start : page.index("<h2", start + 1)]

    assert "Nothing is overdue." in overdue()
    clock.move_to(deadline.due_at + timedelta(minutes=1))
    assert "Recovery plan due" in overdue()
    mark_done(db.session.get(type(deadline), deadline.id), note="done")
    db.session.commit()
    assert "Nothing is overdue." in overdue()


def test_fragments_of_an_older_data_version_are_dropped():
    cache = FragmentCache()
    cache.at_version((5, 1, 1, 1))
    cache.put("a", "old")
    cache.at_version((5, 1, 1, 1))
    assert cache.get("a") == "old"
    cache.at_version((6, 1, 1, 1))
    assert len(cache) == 0
