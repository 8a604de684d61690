"""Signing in and out: throttling, CSRF, redirects, sessions, password change and reset."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from, sign_in
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.org import Person
from workflow_app.models.outbox import OutboxMessage


def test_sign_in_shows_the_home_page_and_records_it(client, create_person):
    ceo = create_person("ceo", name="Ada Chief")
    response = sign_in(client, ceo.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Ada Chief" in home.text
    assert "Chief Executive" in home.text
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "login.succeeded" in actions


def test_wrong_password_is_refused_without_saying_whether_the_account_exists(client, create_person):
    person = create_person("ceo")
    wrong = sign_in(client, person.email, "not the password at all")
    unknown = sign_in(client, "nobody@example.nhs.uk", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Enter a correct e-mail address and password" in wrong.text
    assert "Enter a correct e-mail address and password" in unknown.text
    assert client.get("/").status_code == 302  # still signed out


def test_repeated_failures_lock_the_account_even_with_the_right_password(
    app, client, create_person, clock
):
    person = create_person("executive_director")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(client, person.email, "wrong password guess")
    locked = sign_in(client, person.email, PASSWORD)
    assert locked.status_code == 401
    assert "locked until" in locked.text
    assert "login.locked" in db.session.scalars(sa.select(AuditEvent.action)).all()

    clock.shift(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1))
    assert sign_in(client, person.email, PASSWORD).status_code == 302


def test_rate_limit_per_address_answers_429(make_app, create_person):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    with app.app_context():
        page = client.get("/auth/login")
        token = csrf_from(page.text)
        codes = [
            client.post(
                "/auth/login",
                data={"email": "x@example.nhs.uk", "password": "guess", "csrf_token": token},
            ).status_code
            for _ in range(5)
        ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(client, create_person):
    person = create_person("ceo")
    response = client.post("/auth/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "expired or was not sent from this site" in response.text
    assert db.session.get(Person, person.id).last_login_at is None


def test_csrf_is_required_on_state_changing_admin_routes(client, login, create_person):
    admin = create_person("system_admin")
    other = create_person("committee_member")
    login(admin)
    response = client.post(f"/admin/people/{other.id}/disable", data={})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Person, other.id).is_enabled


def test_next_parameter_cannot_redirect_to_another_site(app, create_person):
    person = create_person("ceo")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        response = sign_in(app.test_client(), person.email, next=target)
        assert response.status_code == 302
        assert response.headers["Location"] == "/", target


def test_next_parameter_returns_to_a_page_on_this_site(client, create_person):
    person = create_person("ceo")
    response = sign_in(client, person.email, next="/units/")
    assert response.headers["Location"] == "/units/"


def test_signing_in_starts_a_new_session(client, create_person):
    """Session fixation: nothing planted before sign-in survives it."""
    person = create_person("ceo")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    sign_in(client, person.email)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("_user_id")


def test_sign_out_is_post_only_and_ends_the_session(client, login, create_person):
    login(create_person("ceo"))
    assert client.get("/auth/logout").status_code == 405
    token = csrf_from(client.get("/").text)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_session_cookie_flags(client, create_person):
    person = create_person("ceo")
    response = sign_in(client, person.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_changing_password_ends_other_sessions(app, create_person):
    person = create_person("ceo")
    first, second = app.test_client(), app.test_client()
    sign_in(first, person.email)
    sign_in(second, person.email)
    page = first.get("/auth/password")
    new_password = "a brand new long passphrase"
    response = first.post(
        "/auth/password",
        data={
            "csrf_token": csrf_from(page.text),
            "current_password": PASSWORD,
            "new_password": new_password,
            "confirm": new_password,
        },
    )
    assert response.status_code == 302
    assert first.get("/").status_code == 200  # this session goes on
    assert second.get("/").status_code == 302  # the other one is signed out
    assert sign_in(app.test_client(), person.email, new_password).status_code == 302


def test_a_weak_new_password_is_refused_with_the_reason(app, client, login, create_person):
    person = create_person("ceo")
    login(person)
    page = client.get("/auth/password")
    response = client.post(
        "/auth/password",
        data={
            "csrf_token": csrf_from(page.text),
            "current_password": PASSWORD,
            "new_password": "short",
            "confirm": "short",
        },
    )
    assert response.status_code == 200
    assert "at least 12 characters" in response.text
    assert sign_in(app.test_client(), person.email).status_code == 302  # old one still works


def test_administrator_reset_link_arrives_in_the_outbox_and_works_once(
    app, client, login, create_person
):
    admin = create_person("system_admin")
    lead = create_person("directorate_lead", name="Lee Lead")
    login(admin)
    page = client.get(f"/admin/people/{lead.id}")
    response = client.post(
        f"/admin/people/{lead.id}/reset", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 302
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.to_address == lead.email)
    )
    assert message is not None and message.kind == "password_reset"
    link = re.search(r"http://\S+/auth/reset/(\S+)", message.body_text)
    assert link, message.body_text
    path = f"/auth/reset/{link.group(1)}"

    anonymous = app.test_client()
    form = anonymous.get(path)
    assert form.status_code == 200
    new_password = "lee's new long passphrase"
    data = {
        "csrf_token": csrf_from(form.text),
        "new_password": new_password,
        "confirm": new_password,
    }
    assert anonymous.post(path, data=data).status_code == 302
    assert sign_in(app.test_client(), lead.email, new_password).status_code == 302
    again = anonymous.get(path)
    assert again.status_code == 404
    assert "already been used" in again.text or "expired" in again.text


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(app, client, login, create_person):
    admin = create_person("system_admin")
    person = create_person("committee_member")
    theirs = app.test_client()
    sign_in(theirs, person.email)
    login(admin)
    page = client.get(f"/admin/people/{person.id}")
    client.post(f"/admin/people/{person.id}/disable", data={"csrf_token": csrf_from(page.text)})
    assert theirs.get("/").status_code == 302
    refused = sign_in(app.test_client(), person.email)
    assert refused.status_code == 401
    assert "disabled" in refused.text


def test_ordinary_responses_do_not_resend_the_session_cookie(client, login, create_person):
    """A response in flight during sign-out must not put the signed-in cookie back."""
    login(create_person("ceo"))
    client.get("/")  # the CSRF token is created once, on the first page
    for path in ("/", "/static/css/escalate.css", "/deadlines/"):
        response = client.get(path)
        assert response.status_code in (200, 302)
        assert "Set-Cookie" not in response.headers, path
    token = csrf_from(client.get("/").text)
    signed_out = client.post("/auth/logout", data={"csrf_token": token})
    assert "Set-Cookie" in signed_out.headers  # the sign-out itself replaces the cookie
