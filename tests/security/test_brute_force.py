"""Check 16 (RELIABILITY-ANCHORS section 7): credential stuffing and brute force.

Per account: 5 failures lock it for 15 minutes (at most 20 guesses an hour, whatever the
number of addresses). Per address: 10 refused sign-ins in 15 minutes answer 429. The owner,
in a browser where they signed in before, can still sign in while an attacker keeps the
account locked (decision 0030). The same words for an unknown e-mail and a wrong password
are checked in tests/web/test_auth.py.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from
from workflow_app.extensions import db


def _client(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _attempt(client, email: str, password: str) -> int:
    page = client.get("/auth/login")
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.text)}
    return client.post("/auth/login", data=data).status_code


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_guesses_per_account_are_bounded_across_many_addresses(make_app, create_person, clock):
    app = make_app(RATELIMIT_ENABLED=True)
    email = create_person("ceo").email
    checked = 0
    for minute in range(0, 60, 5):  # an hour, a new address for every guess
        for n in range(3):
            attacker = _client(app, f"203.0.113.{minute + n}")
            if _attempt(attacker, email, f"guess {minute} {n}") == 401:
                checked += 1
        clock.shift(timedelta(minutes=5))
    with app.app_context():
        from workflow_app.models.audit import AuditEvent

        locks = db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "login.locked")
        )
    # 36 guesses were sent; after every 5th the account locks for 15 minutes, so at most
    # 5 guesses per 15 minutes were checked against the password: <= 20 per hour.
    assert locks >= 2
    assert checked == 36  # every guess was refused with the same 401...
    # ...but the locked ones never reached the password check: the right password fails too.
    locked_out = _client(app, "203.0.113.250")
    for _ in range(5):
        _attempt(locked_out, email, "still guessing")
    assert _attempt(locked_out, email, PASSWORD) == 401


def test_the_owner_can_sign_in_from_their_usual_browser_while_an_attacker_locks_the_account(
    make_app, create_person
):
    app = make_app(RATELIMIT_ENABLED=True)
    email = create_person("executive_director").email
    owner = _client(app, "10.1.1.1")
    assert _attempt(owner, email, PASSWORD) == 302  # their usual browser, signed in before
    token = csrf_from(owner.get("/").text)
    owner.post("/auth/logout", data={"csrf_token": token})

    attacker = _client(app, "198.51.100.7")
    for n in range(6):
        _attempt(attacker, email, f"wrong guess {n}")
    assert _attempt(attacker, email, PASSWORD) == 401  # locked for the attacker's browser
    stranger = _client(app, "198.51.100.8")
    assert _attempt(stranger, email, PASSWORD) == 401  # and for any unknown browser

    owner.environ_base["REMOTE_ADDR"] = "10.2.2.2"  # the owner, now from another address
    assert _attempt(owner, email, PASSWORD) == 302
    assert _signed_in(owner)


def test_a_trusted_browser_mark_stops_counting_after_a_password_reset(make_app, create_person):
    from workflow_app.models.org import Person
    from workflow_app.services.passwords import hash_password

    app = make_app(RATELIMIT_ENABLED=True)
    person = create_person("ceo")
    email = person.email
    thief = _client(app, "10.9.9.9")
    assert _attempt(thief, email, PASSWORD) == 302  # the old password was stolen once
    new_password = "a completely different passphrase"
    db.session.get(Person, person.id).password_hash = hash_password(new_password)
    db.session.commit()
    for n in range(5):
        _attempt(_client(app, f"10.9.9.{n + 10}"), email, f"guess {n}")
    thief.delete_cookie("session")  # signed out; the trusted-browser mark stays
    assert _attempt(thief, email, new_password) == 401  # the old mark no longer passes a lock


def test_refused_sign_ins_from_one_address_are_throttled(make_app, create_person):
    app = make_app(RATELIMIT_ENABLED=True)
    emails = [create_person("committee_member").email for _ in range(3)]
    attacker = _client(app, "192.0.2.10")
    codes = [_attempt(attacker, emails[n % 3], f"stuffed {n}") for n in range(12)]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]
    # Another address is not affected, and successes do not count towards the limit.
    colleague = _client(app, "192.0.2.11")
    for _ in range(12):
        assert _attempt(colleague, emails[0], PASSWORD) == 302
        colleague.delete_cookie("session")
