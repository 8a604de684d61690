"""Pages render what a user needs: the register, a case with its diagram, frameworks."""

from __future__ import annotations

import re
import shutil

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Debian's graphviz")


def test_home_register_shows_each_unit_and_its_level_per_track(
    client, login, create_person, create_unit
):
    create_unit(name="Surgery")
    create_unit(name="Medicine")
    login(create_person("ceo"))
    page = client.get("/")
    assert page.status_code == 200
    assert "Chief Executive overview" in page.text
    for text in ("Surgery", "Medicine", "Performance", "Finance", "Normal arrangements"):
        assert text in page.text


def test_open_cases_are_listed_on_home(client, login, create_person, create_unit):
    unit = create_unit(name="Surgery")
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
        )
    )
    case.level = "2a"
    db.session.commit()
    login(create_person("executive_director"))
    page = client.get("/")
    assert "1 open escalation" in page.text
    assert f"/cases/{case.id}" in page.text


@needs_dot
def test_case_page_draws_the_lifecycle_with_the_current_level(
    client, login, create_person, create_unit
):
    unit = create_unit()
    case = db.session.scalar(sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id))
    login(create_person("committee_member"))
    page = client.get(f"/cases/{case.id}")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "Normal arrangements" in page.text


@needs_dot
def test_framework_pages_list_and_draw_each_framework(client, login, create_person):
    login(create_person("performance_team"))
    index = client.get("/frameworks/")
    for name in ("iqpf", "nhs_wales", "system_tiers"):
        assert f"/frameworks/{name}" in index.text
        page = client.get(f"/frameworks/{name}")
        assert page.status_code == 200
        assert "<svg" in page.text
    assert "Special measures" in client.get("/frameworks/nhs_wales").text
    assert client.get("/frameworks/nope").status_code == 404


def test_error_pages_explain_themselves(client, login, create_person):
    login(create_person("directorate_lead"))
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    forbidden = client.get("/admin/people")
    assert forbidden.status_code == 403
    assert "You do not have permission" in forbidden.text


def test_an_unexpected_error_shows_a_reference_and_changes_nothing(make_app, create_person):
    app = make_app()

    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in response.text
    assert re.search(r"reference: <strong>[0-9a-f]{8}</strong>", response.text)
    assert "kaboom" not in response.text
