"""Reading through the API: what each role's token sees (the web's rules, 404 for hidden
objects), the content of each resource, and pagination."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import bearer
from tests.security.conftest import ROLES

#: Every API route, filled with unit B's objects: who may read it (200). The lead of unit
#: A gets 404 on B's objects, exactly as for an id that does not exist (decision 0006).
ORG_ROLES = frozenset(ROLES) - {"anonymous", "directorate_lead"}
OBJECT_ROUTES = {
    "api.get_unit": "/api/v1/units/{unit_id}",
    "api.get_measure": "/api/v1/measures/{measure_id}",
    "api.measure_values": "/api/v1/measures/{measure_id}/values",
    "api.get_case": "/api/v1/cases/{case_id}",
    "api.get_plan": "/api/v1/plans/{plan_id}",
    "api.get_meeting": "/api/v1/meetings/{meeting_id}",
}
LIST_ROUTES = {
    "api.list_units": "/api/v1/units",
    "api.list_levels": "/api/v1/levels",
    "api.list_measures": "/api/v1/measures",
    "api.list_cases": "/api/v1/cases",
    "api.list_plans": "/api/v1/plans",
    "api.list_meetings": "/api/v1/meetings",
}
OTHER_ROUTES = {
    "api.openapi",
    "api.post_monthly_data",
}  # tests/api/test_auth.py, test_monthly_data.py


@pytest.fixture
def tokens(world, issue_token):
    return {role: issue_token(person) for role, person in world.people.items()}


def test_every_api_route_is_covered_here(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    assert endpoints == set(OBJECT_ROUTES) | set(LIST_ROUTES) | OTHER_ROUTES


def test_each_role_reads_what_it_may_see_and_nothing_else(app, world, tokens):
    client = app.test_client()
    problems = []
    for role, secret in tokens.items():
        for template in OBJECT_ROUTES.values():
            path = template.format(**world.ids)
            response = client.get(path, headers=bearer(secret))
            expected = 200 if role in ORG_ROLES else 404
            if response.status_code != expected:
                problems.append(f"{role} GET {path}: {response.status_code}, not {expected}")
            if expected == 404 and "Unit B" in response.text:
                problems.append(f"{role} GET {path}: the 404 names unit B")
        for endpoint, path in LIST_ROUTES.items():
            response = client.get(path, headers=bearer(secret))
            if response.status_code != 200:
                problems.append(f"{role} GET {path}: {response.status_code}")
                continue
            key = "id" if endpoint == "api.list_units" else "unit_id"
            unit_ids = {row[key] for row in response.json["data"]}
            if role == "directorate_lead" and world.unit_b.id in unit_ids:
                problems.append(f"{role} GET {path}: lists unit B's rows")
            lists_units = endpoint in ("api.list_units", "api.list_levels")
            if role in ORG_ROLES and lists_units and world.unit_b.id not in unit_ids:
                problems.append(f"{role} GET {path}: unit B missing")
    assert problems == []


def test_the_lead_of_a_unit_sees_its_own_unit(app, world, issue_token):
    secret = issue_token(world.people["directorate_lead"])
    body = app.test_client().get("/api/v1/units", headers=bearer(secret)).json
    assert [u["code"] for u in body["data"]] == ["UA"]
    response = app.test_client().get(f"/api/v1/units/{world.unit_a.id}", headers=bearer(secret))
    assert response.json["lead"]["name"] == world.people["directorate_lead"].name


def test_levels_cases_plans_and_meetings_say_what_the_web_says(app, world, tokens):
    client = app.test_client()
    headers = bearer(tokens["ceo"])
    levels = client.get("/api/v1/levels", headers=headers).json["data"]
    unit_b = next(row for row in levels if row["unit_code"] == "UB")
    by_track = {case["track"]: case for case in unit_b["cases"]}
    assert by_track["performance"]["level"] == "2a" and by_track["performance"]["escalated"]
    assert by_track["finance"]["level"] == "2b"
    assert unit_b["headline"]["level"] in ("2a", "2b")
    unit_a = next(row for row in levels if row["unit_code"] == "UA")
    assert unit_a["headline"] is None

    case = client.get(f"/api/v1/cases/{world.ids['case_id']}", headers=headers).json
    assert case["level"] == "2a"
    assert [(h["from_level"], h["to_level"]) for h in case["history"]][-1] == ("1", "2a")

    plan = client.get(f"/api/v1/plans/{world.ids['plan_id']}", headers=headers).json
    assert plan["status"] == "draft" and plan["case_id"] == world.ids["case_id"]
    assert isinstance(plan["actions"], list)

    meeting = client.get(f"/api/v1/meetings/{world.ids['meeting_id']}", headers=headers).json
    assert meeting["unit_id"] == world.unit_b.id
    assert meeting["status"] == "requested"
    assert meeting["invitees"]

    measure = client.get(f"/api/v1/measures/{world.ids['measure_id']}", headers=headers).json
    assert (measure["code"], measure["target"], measure["unit_code"]) == ("RTT18", 92.0, "UB")
    filtered = client.get(
        f"/api/v1/plans?status=approved&unit_id={world.unit_b.id}", headers=headers
    ).json
    assert filtered == {"data": [], "next": None}


def test_pages_follow_next_until_every_row_was_seen_once(
    app, create_person, create_unit, issue_token
):
    for _ in range(7):
        create_unit()
    secret = issue_token(create_person("committee_member"))
    client = app.test_client()
    url, seen, pages = "/api/v1/units?limit=3", [], 0
    while url:
        response = client.get(url, headers=bearer(secret))
        assert response.status_code == 200
        body = response.json
        seen += [unit["code"] for unit in body["data"]]
        assert len(body["data"]) <= 3
        if body["next"]:
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
            assert "limit=3" in body["next"]
        else:
            assert "Link" not in response.headers
        url, pages = body["next"], pages + 1
    assert sorted(seen) == sorted(f"U{n}" for n in range(1, 8))
    assert len(seen) == len(set(seen)) == 7
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=-1", "cursor"),
        ("cursor=99999999999", "cursor"),
        ("unit_id=abc", "unit_id"),
        ("status=lost", "status"),
    ],
)
def test_a_bad_query_parameter_is_a_400_naming_it(
    app, create_person, issue_token, query, parameter
):
    secret = issue_token(create_person("ceo"))
    path = "/api/v1/plans" if parameter == "status" else "/api/v1/measures"
    response = app.test_client().get(f"{path}?{query}", headers=bearer(secret))
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["parameter"] == parameter
    assert re.search(parameter, response.json["detail"])


def test_an_id_beyond_the_database_range_is_404_not_an_error(app, create_person, issue_token):
    secret = issue_token(create_person("ceo"))
    response = app.test_client().get("/api/v1/units/99999999999999999999", headers=bearer(secret))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
