"""Fixtures for the API tests: tokens made through the real service, and the security
world (two units, one person per role, unit B with a case at 2a, a plan and a meeting)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.security.conftest import DECIDED_AT, build_world
from workflow_app.clock import utcnow
from workflow_app.extensions import db


@pytest.fixture
def admin(create_person):
    return create_person("system_admin", name="Token Admin")


@pytest.fixture
def issue_token(app, admin):
    """``issue_token(person, "read", ...)`` -> the secret of a new token (committed)."""
    from workflow_app.services.api_tokens import create_token

    def factory(person, *scopes: str, days: int = 30, name: str = "BI load"):
        _token, secret = create_token(
            admin,
            person=person,
            name=name,
            scopes=list(scopes or ("read",)),
            expires_at=utcnow() + timedelta(days=days),
        )
        db.session.commit()
        return secret

    return factory


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world(app, clock, create_person, create_unit, create_domain):
    clock.move_to(DECIDED_AT)
    return build_world(create_person, create_unit, create_domain)
