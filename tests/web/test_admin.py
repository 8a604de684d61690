"""Administration: units, measures, people and roles; every change audited, bad input refused."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import csrf_from
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import EscalationCase
from workflow_app.models.measures import Measure
from workflow_app.models.org import Person, Unit


def post_form(client, page_path: str, post_path: str | None = None, **data):
    page = client.get(page_path)
    assert page.status_code == 200, page.text
    return client.post(post_path or page_path, data={"csrf_token": csrf_from(page.text), **data})


def audit_actions() -> list[str]:
    return db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()


UNIT_FORM = {
    "code": "SURG",
    "name": "Surgery",
    "kind": "operational_directorate",
    "parent_id": "",
    "accountable_executive_id": "",
    "lead_id": "",
    "budget_holder_id": "",
    "framework": "iqpf",
    "is_active": "y",
}


def test_performance_team_adds_a_unit_which_opens_its_cases(client, login, create_person):
    analyst = create_person("performance_team")
    lead = create_person("directorate_lead")
    login(analyst)
    response = post_form(client, "/admin/units/new", **{**UNIT_FORM, "lead_id": str(lead.id)})
    assert response.status_code == 302, response.text
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == "SURG"))
    assert unit.lead_id == lead.id
    tracks = {c.track: c.level for c in db.session.scalars(sa.select(EscalationCase))}
    assert tracks == {"performance": "1", "finance": "1"}
    assert "unit.created" in audit_actions()


def test_a_duplicate_unit_code_is_refused_and_nothing_changes(
    client, login, create_person, create_unit
):
    create_unit(code="SURG")
    login(create_person("performance_team"))
    before = audit_actions()
    response = post_form(client, "/admin/units/new", **UNIT_FORM)
    assert response.status_code == 200
    assert "already exists" in response.text
    assert db.session.scalar(sa.select(sa.func.count(Unit.id))) == 1
    assert audit_actions() == before


def test_bad_unit_input_lists_every_problem(client, login, create_person):
    login(create_person("performance_team"))
    response = post_form(
        client, "/admin/units/new", **{**UNIT_FORM, "code": "bad code!", "name": ""}
    )
    assert response.status_code == 200
    assert "Use capital letters" in response.text
    assert "Enter a name" in response.text
    assert "There is a problem" in response.text
    assert db.session.scalar(sa.select(sa.func.count(Unit.id))) == 0


def test_editing_a_unit_records_before_and_after(client, login, create_person, create_unit):
    unit = create_unit(code="MED", name="Medicine")
    login(create_person("performance_team"))
    response = post_form(
        client,
        f"/admin/units/{unit.id}/edit",
        **{**UNIT_FORM, "code": "MED", "name": "Medicine & Elderly"},
    )
    assert response.status_code == 302
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "unit.updated"))
    assert "Medicine" in event.details and "Medicine & Elderly" in event.details


def test_adding_a_measure_with_target_and_tolerance(
    client, login, create_person, create_unit, create_domain
):
    unit = create_unit()
    domain = create_domain()
    login(create_person("performance_team"))
    data = {
        "code": "RTT18",
        "name": "RTT within 18 weeks",
        "domain_id": str(domain.id),
        "kind": "national_target",
        "target": "92",
        "direction": "higher_is_better",
        "tolerance": "2.5",
        "unit_of_measure": "percent",
        "owner_id": "",
        "is_active": "y",
    }
    response = post_form(client, f"/admin/units/{unit.id}/measures/new", **data)
    assert response.status_code == 302
    measure = db.session.scalar(sa.select(Measure))
    assert (measure.code, float(measure.target), float(measure.tolerance)) == ("RTT18", 92, 2.5)
    assert "measure.created" in audit_actions()

    negative = post_form(
        client,
        f"/admin/units/{unit.id}/measures/new",
        **{**data, "code": "RTT52", "tolerance": "-1", "target": "lots"},
    )
    assert negative.status_code == 200
    assert "Tolerance cannot be negative" in negative.text
    assert "Enter the target as a number" in negative.text
    assert db.session.scalar(sa.select(sa.func.count(Measure.id))) == 1


def test_system_admin_adds_a_person_and_grants_roles(client, login, create_person):
    login(create_person("system_admin"))
    response = post_form(
        client,
        "/admin/people/new",
        name="Nia Nurse",
        email="Nia.Nurse@Example.NHS.uk",
        job_title="Director of Nursing",
    )
    assert response.status_code == 302
    person = db.session.scalar(sa.select(Person).where(Person.email == "nia.nurse@example.nhs.uk"))
    assert person is not None and person.password_hash is None
    page = client.get(f"/admin/people/{person.id}")
    client.post(
        f"/admin/people/{person.id}/roles",
        data={"csrf_token": csrf_from(page.text), "grant-role": "executive_director"},
    )
    client.post(
        f"/admin/people/{person.id}/roles",
        data={"csrf_token": csrf_from(page.text), "grant-role": "director_general"},
    )
    db.session.expire_all()
    assert person.roles == {"executive_director", "director_general"}
    actions = audit_actions()
    assert actions.count("role.granted") == 2
    assert "person.created" in actions and "person.password_reset_issued" in actions

    duplicate = post_form(
        client, "/admin/people/new", name="Again", email="nia.nurse@example.nhs.uk"
    )
    assert "already exists" in duplicate.text


def test_an_unknown_role_is_refused(client, login, create_person):
    login(create_person("system_admin"))
    person = create_person()
    page = client.get(f"/admin/people/{person.id}")
    response = client.post(
        f"/admin/people/{person.id}/roles",
        data={"csrf_token": csrf_from(page.text), "grant-role": "emperor"},
        follow_redirects=True,
    )
    assert "Choose a role from the list" in response.text
    db.session.expire_all()
    assert db.session.get(Person, person.id).roles == set()


def test_an_administrator_cannot_lock_themselves_out(client, login, create_person):
    admin = create_person("system_admin")
    login(admin)
    page = client.get(f"/admin/people/{admin.id}")
    response = client.post(
        f"/admin/people/{admin.id}/disable",
        data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )
    assert "cannot disable your own account" in response.text
    db.session.expire_all()
    assert db.session.get(Person, admin.id).is_enabled


def test_services_check_permissions_too(app, create_person, create_unit):
    """The service layer refuses even if a view forgot to check."""
    import pytest

    from workflow_app.services import accounts, org
    from workflow_app.services.errors import PermissionDenied

    committee = create_person("committee_member")
    with pytest.raises(PermissionDenied):
        org.create_unit(
            committee, code="X", name="X", kind="operational_directorate", framework="iqpf"
        )
    with pytest.raises(PermissionDenied):
        accounts.grant_role(committee, committee, "system_admin")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Unit.id))) == 0
