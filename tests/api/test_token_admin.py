"""The system administrator's token page: create (secret shown once, only its hash kept),
limits on scopes and expiry, revoke with a reason; everything audited; others refused."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import sqlalchemy as sa

from tests.api.conftest import bearer
from tests.conftest import csrf_from
from tests.security.conftest import snapshot
from workflow_app.clock import today_london
from workflow_app.extensions import db
from workflow_app.models.api_tokens import ApiToken
from workflow_app.models.audit import AuditEvent

SECRET_RE = re.compile(r'id="secret"[^>]*value="([^"]+)"')


def create_form(client, **fields):
    page = client.get("/admin/api-tokens/new")
    assert page.status_code == 200
    data = {"csrf_token": csrf_from(page.text), **fields}
    return client.post("/admin/api-tokens/new", data=data)


def test_a_token_is_created_its_secret_shown_once_and_only_its_hash_kept(
    app, admin, login, create_person
):
    analyst = create_person("committee_member", name="Ann Analyst")
    client = login(admin)
    response = create_form(
        client,
        name="BI nightly load",
        person_id=analyst.id,
        scopes=["read"],
        expires_on=(today_london() + timedelta(days=30)).isoformat(),
    )
    assert response.status_code == 200
    secret = SECRET_RE.search(response.text).group(1)
    assert secret.startswith("esc_") and len(secret) > 40
    assert response.headers["Cache-Control"] == "no-store"

    token = db.session.scalar(sa.select(ApiToken))
    assert token.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert (token.person_id, token.scopes, token.created_by_id) == (analyst.id, "read", admin.id)
    assert secret[len(token.prefix) :] not in repr(
        db.session.execute(sa.select(ApiToken.__table__)).all()
    )
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "api_token.created"))
    assert secret not in event.summary + event.details and "BI nightly load" in event.summary

    listing = client.get("/admin/api-tokens/")
    assert "BI nightly load" in listing.text and token.prefix in listing.text
    assert secret not in listing.text
    assert secret not in client.get(f"/admin/api-tokens/{token.id}").text
    # The secret works at once, as its person.
    api = app.test_client().get("/api/v1/units", headers=bearer(secret))
    assert api.status_code == 200


def test_bad_choices_are_explained_and_create_nothing(app, admin, login, create_person):
    person = create_person("ceo")
    client = login(admin)
    today = today_london()
    cases = [
        ({"name": "", "scopes": ["read"]}, "Enter a name"),
        ({"name": "x", "scopes": []}, "Choose at least one scope"),
        ({"name": "x", "scopes": ["admin"]}, "not a valid choice"),
        ({"name": "x", "scopes": ["read"], "expires_on": today.isoformat()}, "after today"),
        (
            {
                "name": "x",
                "scopes": ["read"],
                "expires_on": (today + timedelta(days=366)).isoformat(),
            },
            "at most 365 days",
        ),
    ]
    before = snapshot()
    for fields, message in cases:
        data = {"person_id": person.id, "expires_on": (today + timedelta(days=5)).isoformat()}
        response = create_form(client, **{**data, **fields})
        assert response.status_code == 200
        assert message in response.text, fields
        assert 'id="secret"' not in response.text
    assert snapshot() == before


def test_the_longest_allowed_expiry_is_a_year(app, admin, login, create_person):
    client = login(admin)
    response = create_form(
        client,
        name="yearly",
        person_id=create_person("ceo").id,
        scopes=["read", "data:write"],
        expires_on=(today_london() + timedelta(days=365)).isoformat(),
    )
    assert 'id="secret"' in response.text
    token = db.session.scalar(sa.select(ApiToken))
    assert token.scopes == "read data:write"
    assert token.expires_at - token.created_at <= timedelta(days=365, minutes=1)


def test_revoking_needs_a_reason_stops_the_token_and_is_audited(
    app, admin, login, create_person, issue_token
):
    secret = issue_token(create_person("ceo"))
    token = db.session.scalar(sa.select(ApiToken))
    client = login(admin)
    page = client.get(f"/admin/api-tokens/{token.id}")
    csrf = csrf_from(page.text)
    response = client.post(f"/admin/api-tokens/{token.id}/revoke", data={"csrf_token": csrf})
    assert "Enter the reason" in response.text
    db.session.expire_all()
    assert token.revoked_at is None

    response = client.post(
        f"/admin/api-tokens/{token.id}/revoke",
        data={"csrf_token": csrf, "reason": "Contractor left"},
        follow_redirects=True,
    )
    assert "was revoked" in response.text
    db.session.expire_all()
    assert token.revoked_at is not None and token.revoked_by_id == admin.id
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "api_token.revoked"))
    assert "Contractor left" in event.summary and event.actor_id == admin.id
    assert app.test_client().get("/api/v1/units", headers=bearer(secret)).status_code == 401

    again = client.post(
        f"/admin/api-tokens/{token.id}/revoke",
        data={"csrf_token": csrf, "reason": "twice"},
        follow_redirects=True,
    )
    assert "already been revoked" in again.text


def test_only_a_system_administrator_may_use_the_token_pages(
    app, client, login, create_person, issue_token
):
    issue_token(create_person("ceo"))
    token = db.session.scalar(sa.select(ApiToken))
    login(create_person("performance_team", "ceo", "executive_director", "committee_member"))
    before = snapshot()
    for path in ("/admin/api-tokens/", "/admin/api-tokens/new", f"/admin/api-tokens/{token.id}"):
        assert client.get(path).status_code == 403, path
    csrf = csrf_from(client.get("/auth/settings").text)
    for path in ("/admin/api-tokens/new", f"/admin/api-tokens/{token.id}/revoke"):
        data = {"csrf_token": csrf, "name": "x", "reason": "x", "scopes": ["read"]}
        assert client.post(path, data=data).status_code == 403, path
    assert snapshot() == before


def test_the_command_line_creates_and_revokes_tokens(app, admin, create_person):
    from workflow_app.cli.api import api_cli

    analyst = create_person("committee_member", email="ann@example.nhs.uk")
    runner = app.test_cli_runner()
    created = runner.invoke(
        api_cli,
        ["token", "create", "--person", analyst.email, "--name", "BI", "--scope", "read"],
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert app.test_client().get("/api/v1/units", headers=bearer(secret)).status_code == 200
    token = db.session.scalar(sa.select(ApiToken))
    assert (token.created_by_id, token.scopes) == (admin.id, "read")

    refused = runner.invoke(
        api_cli,
        ["token", "create", "--person", analyst.email, "--name", "x", "--scope", "admin"],
    )
    assert refused.exit_code == 1 and "Unknown scope admin" in refused.output
    revoked = runner.invoke(api_cli, ["token", "revoke", str(token.id), "--reason", "done"])
    assert revoked.exit_code == 0, revoked.output
    assert app.test_client().get("/api/v1/units", headers=bearer(secret)).status_code == 401
