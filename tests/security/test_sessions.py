"""Checks 14 and 15 (RELIABILITY-ANCHORS section 7): session misuse, and signing without
fresh credentials.

Already covered elsewhere, not repeated here: fixation (a planted session key does not survive
sign-in), password change and disabling ending other sessions, HttpOnly/SameSite on the
session cookie (tests/web/test_auth.py); a wrong password signs nothing at the service
(tests/decisions/test_decide.py).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from config import ProductionConfig
from tests.conftest import PASSWORD, csrf_from, sign_in
from tests.security.conftest import snapshot
from workflow_app.extensions import db


def _session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def _replay(app, value: str):
    """A fresh browser holding a copy of someone's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


def test_the_session_cookie_changes_when_signing_in(app, create_person):
    person = create_person("ceo")
    client = app.test_client()
    client.get("/auth/login")
    before = _session_cookie(client)
    sign_in(client, person.email)
    after = _session_cookie(client)
    assert after != before
    assert _replay(app, before).get("/").status_code == 302  # the pre-login cookie is anonymous


def test_a_copied_cookie_is_worthless_after_sign_out(app, create_person):
    person = create_person("executive_director")
    client = app.test_client()
    sign_in(client, person.email)
    copied = _session_cookie(client)
    assert _replay(app, copied).get("/").status_code == 200  # the copy works while signed in
    token = csrf_from(client.get("/").text)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    replayed = _replay(app, copied).get("/")
    assert replayed.status_code == 302
    assert "/auth/login" in replayed.headers["Location"]


def test_a_copied_cookie_is_worthless_after_a_password_change(app, create_person):
    person = create_person("ceo")
    client = app.test_client()
    sign_in(client, person.email)
    copied = _session_cookie(client)
    page = client.get("/auth/password")
    new = "seven tired otters under a bridge"
    client.post(
        "/auth/password",
        data={
            "csrf_token": csrf_from(page.text),
            "current_password": PASSWORD,
            "new_password": new,
            "confirm": new,
        },
    )
    assert client.get("/").status_code == 200
    assert _replay(app, copied).get("/").status_code == 302


def test_an_idle_session_ends(make_app, create_person, clock):
    app = make_app(SESSION_IDLE_MINUTES=30)
    person = create_person("ceo")  # the same database, through the default app
    client = app.test_client()
    sign_in(client, person.email)
    for _ in range(3):  # active every 25 minutes: still signed in after 75 minutes
        clock.shift(timedelta(minutes=25))
        assert client.get("/").status_code == 200
    clock.shift(timedelta(minutes=31))
    response = client.get("/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    assert client.get("/").status_code == 302  # and stays ended


def test_the_absolute_lifetime_ends_even_an_active_session(make_app, create_person, clock):
    app = make_app(SESSION_IDLE_MINUTES=30, PERMANENT_SESSION_LIFETIME=2 * 3600)
    person = create_person("ceo")  # the same database, through the default app
    client = app.test_client()
    sign_in(client, person.email)
    for _ in range(4):  # 1 hour 40 minutes of activity, every 25 minutes
        clock.shift(timedelta(minutes=25))
        assert client.get("/").status_code == 200
    clock.shift(timedelta(minutes=25))  # 2 hours 5 minutes after sign-in
    assert client.get("/").status_code == 302


def test_cookies_are_secure_httponly_and_samesite_in_production(make_app, create_person):
    assert (
        ProductionConfig.SESSION_COOKIE_SECURE
        or "SESSION_COOKIE_SECURE" in __import__("os").environ
    ), "production must send cookies only over HTTPS unless told otherwise"
    app = make_app(SESSION_COOKIE_SECURE=True)
    person = create_person("ceo")  # the same database, through the default app
    response = sign_in(app.test_client(), person.email)
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 2  # the session and the trusted-device mark
    for cookie in cookies:
        assert "Secure" in cookie, cookie
        assert "HttpOnly" in cookie, cookie
        assert "SameSite=Lax" in cookie, cookie
    assert not any(c.startswith("remember_token") for c in cookies)  # no remember-me cookie


# --- check 15: signing needs the password in the same POST --------------------------------


def _pending_decision(world):
    from workflow_app.models.cases import Decision, EscalationCase
    from workflow_app.services.decisions import raise_escalation

    finance = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == world.unit_b.id, EscalationCase.track == "finance"
        )
    )
    decision = raise_escalation(
        world.people["executive_director"],
        finance,
        to_level="3",
        reason="Forecast overspend keeps growing",
        evidence_note="Forecast £1.9m",
    )
    db.session.commit()
    return db.session.get(Decision, decision.id)


def _sign(client, decision_id: int, password: str):
    page = client.get(f"/decisions/{decision_id}")
    assert page.status_code == 200
    return client.post(
        f"/decisions/{decision_id}/sign",
        data={
            "csrf_token": csrf_from(page.text),
            "outcome": "approve",
            "reason": "Agreed at the Executive Team",
            "meeting_reference": "Executive Team, item 7",
            "password": password,
        },
    )


def test_signing_without_the_password_or_with_a_wrong_one_signs_nothing_and_is_logged(
    world, clients
):
    from workflow_app.models.audit import AuditEvent

    decision = _pending_decision(world)
    before = snapshot()
    for password in ("", "not my password at all"):
        response = _sign(clients["executive_director"], decision.id, password)
        assert response.status_code == 400
        assert "password" in response.text.lower()
    after = snapshot()
    # Only the audit trail and the person's failure counter changed: no signature, no
    # decision, no letter, no e-mail.
    assert sorted(k for k in after if after[k] != before[k]) == ["audit_events", "people"]
    refused = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "signature.refused")
    ).all()
    assert len(refused) == 1  # the empty password never reached the check
    assert refused[0].object_id == str(decision.id)


def test_guessing_the_password_through_the_signing_form_ends_the_session(app, world, clients):
    decision = _pending_decision(world)
    thief = clients["executive_director"]  # a session left open, or a stolen cookie
    for n in range(app.config["LOGIN_MAX_FAILURES"]):
        assert _sign(thief, decision.id, f"guess {n}").status_code == 400
    assert thief.get("/").status_code == 302  # signed out
    locked = sign_in(app.test_client(), world.people["executive_director"].email)
    assert locked.status_code == 401 and "locked" in locked.text


def test_a_signature_records_name_role_time_meaning_and_what_was_signed_and_the_letter_shows_them(
    world, clients
):
    from workflow_app.models.cases import Decision
    from workflow_app.models.letters import Letter
    from workflow_app.services.signatures import payload_sha256, signature_payload

    decision = _pending_decision(world)
    case_version_before = decision.case.version
    signer = world.people["executive_director"]
    response = _sign(clients["executive_director"], decision.id, PASSWORD)
    assert response.status_code == 302, response.text
    db.session.expire_all()
    decision = db.session.get(Decision, decision.id)
    (signature,) = decision.signatures
    assert (signature.person_id, signature.role) == (signer.id, "executive_director")
    assert "approved" in signature.meaning.lower()
    assert signature.signed_at is not None
    # Linked to exactly what was signed: the case's version then, and the hash of the content.
    assert signature.case_version == case_version_before
    assert decision.case.version > case_version_before  # the transition moved the case on
    recomputed = signature_payload(
        decision=decision,
        case=decision.case,
        person_id=signer.id,
        role=signature.role,
        meaning=signature.meaning,
        on_behalf_of_id=None,
        signed_at=signature.signed_at,
        outcome="approve",
        reason="Agreed at the Executive Team",
    )
    recomputed["case_version"] = signature.case_version
    assert payload_sha256(recomputed) == signature.payload_sha256
    recomputed["reason"] = "Something else"
    assert payload_sha256(recomputed) != signature.payload_sha256
    letter = db.session.scalar(sa.select(Letter).where(Letter.decision_id == decision.id))
    assert letter is not None
    assert signer.name in letter.html
    assert signature.payload_sha256 in letter.html
    page = clients["executive_director"].get(f"/decisions/{decision.id}")
    assert signature.payload_sha256 in page.text
