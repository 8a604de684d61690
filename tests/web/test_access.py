"""Access control: who can see which unit and case, and who can administer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase

ORGANISATION_WIDE = ["ceo", "executive_director", "performance_team", "committee_member"]


def case_of(unit, track="performance"):
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def test_signed_out_visitors_are_sent_to_sign_in(client, create_unit):
    unit = create_unit()
    for path in ("/", "/units/", f"/units/{unit.id}", f"/cases/{case_of(unit).id}", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/auth/login?next="), path


def test_a_lead_sees_their_own_unit_and_its_cases(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    mine = create_unit(lead=lead, name="Surgery")
    create_unit(name="Medicine")
    login(lead)
    home = client.get("/")
    assert "Surgery" in home.text
    assert "Medicine" not in home.text
    assert client.get(f"/units/{mine.id}").status_code == 200
    assert client.get(f"/cases/{case_of(mine).id}").status_code == 200


def test_a_lead_cannot_open_another_units_case_by_changing_the_id(
    client, login, create_person, create_unit
):
    lead = create_person("directorate_lead")
    create_unit(lead=lead)
    theirs = create_unit(name="Someone else's unit")
    login(lead)
    assert client.get(f"/units/{theirs.id}").status_code == 404
    for track in ("performance", "finance"):
        response = client.get(f"/cases/{case_of(theirs, track).id}")
        assert response.status_code == 404
        assert "Someone else" not in response.text


@pytest.mark.parametrize("role", ORGANISATION_WIDE)
def test_organisation_wide_roles_see_every_unit(client, login, create_person, create_unit, role):
    units = [create_unit(name=f"Unit named {n}") for n in range(3)]
    login(create_person(role))
    page = client.get("/units/")
    for unit in units:
        assert unit.name in page.text
        assert client.get(f"/cases/{case_of(unit).id}").status_code == 200


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        ("committee_member", "/admin/units", False),
        ("committee_member", "/admin/people", False),
        ("committee_member", "/admin/audit", True),
        ("directorate_lead", "/admin/", False),
        ("directorate_lead", "/admin/audit", False),
        ("directorate_lead", "/admin/outbox", False),
        ("executive_director", "/admin/people", False),
        ("performance_team", "/admin/units", True),
        ("performance_team", "/admin/people", False),
        ("performance_team", "/admin/outbox", True),
        ("system_admin", "/admin/people", True),
        ("system_admin", "/admin/units", True),
    ],
)
def test_administration_pages_by_role(client, login, create_person, role, path, allowed):
    login(create_person(role))
    response = client.get(path)
    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert "You do not have permission" in response.text


def test_unknown_ids_give_a_helpful_404(client, login, create_person):
    login(create_person("ceo"))
    response = client.get("/cases/999999")
    assert response.status_code == 404
    assert "Page not found" in response.text or "not found" in response.text.lower()


def test_security_headers_on_every_page(client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_framework_decider_sees_the_organisation(client, login, create_person, create_unit):
    """NHS Wales' Director General decides for the whole organisation, so sees every unit."""
    unit = create_unit(framework="nhs_wales", kind="organisation", name="Health Board")
    login(create_person("director_general"))
    assert client.get(f"/units/{unit.id}").status_code == 200
