"""Token authentication and scopes: the bearer header is the only way in."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.api.conftest import bearer
from tests.conftest import sign_in
from tests.security.conftest import snapshot
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.api_tokens import ApiToken

PROBLEM = "application/problem+json"


def test_without_a_token_the_api_answers_401_problem_json(client):
    response = client.get("/api/v1/units")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json
    assert body["status"] == 401 and body["type"].endswith("unauthorized")
    assert "Authorization: Bearer" in body["detail"]


def test_an_unknown_token_or_another_scheme_is_refused(client, create_person, issue_token):
    secret = issue_token(create_person("ceo"))
    for header in (f"Bearer {secret}x", f"Basic {secret}", "Bearer ", secret):
        response = client.get("/api/v1/units", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert client.get("/api/v1/units", headers=bearer(secret)).status_code == 200


def test_a_signed_in_browser_session_is_not_api_authentication(app, client, create_person):
    """The session cookie is ignored: a signed-in person's browser gets 401, GET or POST
    (a forged cross-site POST has no token, so CSRF cannot apply), and nothing changes."""
    ceo = create_person("ceo", "performance_team")
    assert sign_in(client, ceo.email).status_code == 302
    assert client.get("/").status_code == 200  # signed in for the web pages
    before = snapshot()
    assert client.get("/api/v1/units").status_code == 401
    response = client.post(
        "/api/v1/monthly-data",
        json={"kind": "finance", "rows": [{"unit_code": "X", "month": "2026-10"}]},
    )
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert snapshot() == before


def test_scopes_limit_what_a_token_may_do(client, create_person, issue_token):
    person = create_person("performance_team")
    read_only = issue_token(person, "read")
    write_only = issue_token(person, "data:write")
    response = client.post("/api/v1/monthly-data", headers=bearer(read_only), json={})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert "data:write" in response.json["detail"]
    response = client.get("/api/v1/units", headers=bearer(write_only))
    assert response.status_code == 403
    assert "'read' scope" in response.json["detail"]


def test_expired_revoked_and_disabled_tokens_stop_working(
    app, client, clock, admin, create_person, issue_token
):
    from workflow_app.services.accounts import set_enabled
    from workflow_app.services.api_tokens import revoke_token

    ceo = create_person("ceo")
    expiring = issue_token(ceo, days=2)
    revoked = issue_token(ceo, name="to revoke")
    disabled_person = create_person("ceo")
    of_disabled = issue_token(disabled_person)
    for secret in (expiring, revoked, of_disabled):
        assert client.get("/api/v1/units", headers=bearer(secret)).status_code == 200

    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "to revoke"))
    revoke_token(admin, token, "Laptop lost")
    set_enabled(admin, disabled_person, False)
    db.session.commit()
    clock.shift(timedelta(days=2, minutes=1))

    expected = {expiring: "expired on", revoked: "revoked on", of_disabled: "disabled"}
    for secret, words in expected.items():
        response = client.get("/api/v1/units", headers=bearer(secret))
        assert response.status_code == 401
        assert words in response.json["detail"]


def test_use_is_recorded_on_the_token(client, create_person, issue_token):
    secret = issue_token(create_person("ceo"))
    token = db.session.scalar(sa.select(ApiToken))
    assert token.last_used_at is None
    client.get("/api/v1/units", headers=bearer(secret))
    db.session.expire_all()
    assert token.last_used_at is not None


def test_the_openapi_document_is_public_and_names_every_route(app, client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    documented = {
        f"/api/v1{path}".replace("{", "<").replace("}", ">") for path in document["paths"]
    }
    routes = {
        rule.rule.replace("<int:", "<")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
    }
    assert routes == documented


def test_too_many_requests_with_one_token_is_429_problem_json(make_app, create_person):
    from workflow_app.services.api_tokens import create_token

    app = make_app(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")
    with app.app_context():
        admin, ceo = create_person("system_admin"), create_person("ceo")
        _token, secret = create_token(
            admin, person=ceo, name="busy", scopes=["read"], expires_at=utcnow() + timedelta(days=1)
        )
        db.session.commit()
    client = app.test_client()
    statuses = [client.get("/api/v1/units", headers=bearer(secret)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/units", headers=bearer(secret))
    assert response.mimetype == PROBLEM and response.json["status"] == 429
    assert int(response.headers["Retry-After"]) > 0
    # The document stays readable, and the limit is per token, not for everyone.
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_an_unexpected_error_is_a_500_problem_with_an_id_and_no_internals(
    app, client, create_person, create_unit, issue_token, monkeypatch
):
    import workflow_app.api.resources as resources

    create_unit()
    secret = issue_token(create_person("ceo"))

    def broken(_unit):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(resources, "unit_json", broken)
    response = client.get("/api/v1/units", headers=bearer(secret))
    assert response.status_code == 500
    assert response.mimetype == PROBLEM
    assert response.json["error_id"] in response.json["detail"]
    assert "secret internals" not in response.text


def test_a_lost_database_is_a_503_problem_asking_to_retry(
    app, client, create_person, create_unit, issue_token, monkeypatch
):
    import sqlalchemy.exc as sa_exc

    import workflow_app.api.resources as resources

    create_unit()
    secret = issue_token(create_person("ceo"))

    def lost(_unit):
        raise sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(resources, "unit_json", lost)
    response = client.get("/api/v1/units", headers=bearer(secret))
    assert response.status_code == 503
    assert response.mimetype == PROBLEM
    assert response.headers["Retry-After"] == "30"
    assert "nothing was changed" in response.json["detail"]
