"""Security headers on every kind of response; HSTS only where the cookie is Secure."""

from __future__ import annotations

import pytest

from tests.conftest import sign_in

PATHS = ("/auth/login", "/", "/static/css/escalate.css", "/no-such-page", "/units/99999")


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_security_headers(app, client, create_person, path):
    sign_in(client, create_person("ceo").email)
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'"):
        assert directive in csp, (path, directive)
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[-1].split(";", 1)[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP in development


def test_hsts_is_sent_when_cookies_are_secure(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    response = app.test_client().get("/auth/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
