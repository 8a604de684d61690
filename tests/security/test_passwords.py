"""Check 17 (RELIABILITY-ANCHORS section 7): password storage and weak passwords.

Production hashes with argon2id at m >= 19 MiB and t >= 2 (ASVS 5.0 Appendix C); the tests
run cheaper parameters, so the production ones are read from the configured hasher. A hash
made with weaker parameters is replaced at the next sign-in. The most used passwords (the
bundled NCSC list) are refused; long and pasted passphrases are accepted.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2._utils import extract_parameters
from argon2.low_level import Type as LowType

from config import Config, ProductionConfig
from tests.conftest import PASSWORD, csrf_from, sign_in
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.services.passwords import (
    common_passwords,
    hash_password,
    hasher_for,
    password_problems,
)


def _settings(config_class) -> dict:
    return {key: getattr(config_class, key) for key in dir(config_class) if key.isupper()}


@pytest.mark.parametrize("config_class", [Config, ProductionConfig])
def test_production_hashes_are_argon2id_with_at_least_19_mib_and_two_passes(config_class):
    hasher = hasher_for(_settings(config_class))
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= 19 * 1024  # KiB
    assert hasher.time_cost >= 2
    parameters = extract_parameters(hasher.hash("a long enough passphrase"))
    assert parameters.type is LowType.ID
    assert parameters.memory_cost >= 19 * 1024 and parameters.time_cost >= 2


def test_stored_hashes_are_argon2id(app, create_person):
    person = create_person("ceo")
    assert db.session.get(Person, person.id).password_hash.startswith("$argon2id$")


def test_a_weaker_hash_is_upgraded_at_the_next_sign_in(app, client, create_person):
    weak = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1).hash(PASSWORD)
    person = create_person("ceo")
    db.session.get(Person, person.id).password_hash = weak
    db.session.commit()
    assert sign_in(client, person.email).status_code == 302
    db.session.expire_all()
    upgraded = db.session.get(Person, person.id).password_hash
    assert upgraded != weak
    configured = hasher_for(app.config)
    parameters = extract_parameters(upgraded)
    assert (parameters.memory_cost, parameters.time_cost) == (
        configured.memory_cost,
        configured.time_cost,
    )
    assert not configured.check_needs_rehash(upgraded)
    assert sign_in(app.test_client(), person.email).status_code == 302  # still the password


def test_a_wrong_password_does_not_touch_a_weaker_hash(app, client, create_person):
    weak = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1).hash(PASSWORD)
    person = create_person("ceo")
    db.session.get(Person, person.id).password_hash = weak
    db.session.commit()
    assert sign_in(client, person.email, "not the password").status_code == 401
    db.session.expire_all()
    assert db.session.get(Person, person.id).password_hash == weak


def test_the_common_password_list_is_bundled_and_large():
    words = common_passwords()
    assert len(words) >= 1900
    assert {"password", "123456", "qwerty", "iloveyou"} <= words


@pytest.mark.parametrize(
    "password",
    [
        "password1234",  # on the list, digits added
        "Liverpool2024!",
        "qwertyuiop123",
        "1q2w3e4r5t6y",  # on the list as it stands
        "aaaaaaaaaaaaaaaa",
        "123456789012",
    ],
)
def test_common_passwords_are_refused_with_the_reason(password):
    problems = password_problems(password, email="ada@example.nhs.uk", name="Ada Chief")
    assert any("most used passwords" in p for p in problems), problems


@pytest.mark.parametrize(
    "password",
    [
        "Tr0ub4dour&3 horse battery staple and a long tail of words",
        "K7#mQ2v!pL9x$Wd4nR8&tY3bZ6@fH1jC5eG0aS2uV4iO7kM9",  # pasted from a password manager
        "a" + "b9!" * 21,  # 64 characters
        "ceòl agus craic: ünïcödé passphrase",
    ],
)
def test_long_and_pasted_passwords_are_accepted(password):
    assert password_problems(password, email="ada@example.nhs.uk", name="Ada Chief") == []


def test_a_common_password_cannot_be_chosen_through_the_form(app, client, login, create_person):
    person = create_person("ceo")
    login(person)
    page = client.get("/auth/password")
    response = client.post(
        "/auth/password",
        data={
            "csrf_token": csrf_from(page.text),
            "current_password": PASSWORD,
            "new_password": "password12345",
            "confirm": "password12345",
        },
    )
    assert response.status_code == 200
    assert "most used passwords" in response.text
    stored = db.session.get(Person, person.id).password_hash
    db.session.expire_all()
    assert db.session.get(Person, person.id).password_hash == stored


def test_a_64_character_password_works_end_to_end(app, create_person):
    long_password = "sixty four characters of a sentence nobody else would write down"[:64]
    assert len(long_password) == 64
    person = create_person("committee_member", password=long_password)
    assert sign_in(app.test_client(), person.email, long_password).status_code == 302
    assert hash_password(long_password) != long_password
