"""Check 18 (RELIABILITY-ANCHORS section 7): no open redirect through ``next=``.

Every payload, whether it arrives in the sign-in page's query string (carried through the
form) or straight in the POST, leaves the person on this site.
"""

from __future__ import annotations

from html import unescape
from urllib.parse import quote, urljoin, urlsplit

from tests.conftest import csrf_from

HOST = "localhost"

PAYLOADS = [
    "https://evil.test",
    "http://evil.test/path",
    "//evil.test",
    "////evil.test",
    "/\\evil.test",
    "\\\\evil.test",
    "\\/evil.test",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "%2F%2Fevil.test",
    "/%2F%2Fevil.test",
    "https://app@evil.test",
    "https:evil.test",
    "/\t/evil.test",
    "/\n/evil.test",
    " //evil.test",
    "data:text/html,<script>alert(1)</script>",
    "http://localhost.evil.test/",
    "/.evil.test",
]


def _lands_on_this_site(location: str) -> bool:
    """As a browser resolves it against the page: same scheme and host, and a plain path."""
    resolved = urlsplit(urljoin(f"http://{HOST}/auth/login", location))
    parts = urlsplit(location)
    return (
        resolved.scheme == "http"
        and resolved.netloc == HOST
        and parts.netloc in ("", HOST)
        and location.startswith("/")
        and not location.startswith("//")
        and "\\" not in location
    )


def _sign_in_via_the_page(app, email: str, target: str):
    client = app.test_client()
    page = client.get(f"/auth/login?next={quote(target, safe='')}")
    assert page.status_code == 200
    token = csrf_from(page.text)
    hidden = page.text.split('name="next"')[1].split(">")[0] if 'name="next"' in page.text else ""
    next_value = unescape(hidden.split('value="')[1].split('"')[0]) if 'value="' in hidden else ""
    return client.post(
        "/auth/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "csrf_token": token,
            "next": next_value,
        },
    )


def _sign_in_posting_next(app, email: str, target: str):
    client = app.test_client()
    page = client.get("/auth/login")
    return client.post(
        "/auth/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "csrf_token": csrf_from(page.text),
            "next": target,
        },
    )


def test_no_payload_sends_anyone_off_the_site(app, create_person):
    email = create_person("ceo").email
    escaped = []
    for payload in PAYLOADS:
        for attempt in (_sign_in_via_the_page, _sign_in_posting_next):
            response = attempt(app, email, payload)
            assert response.status_code == 302
            location = response.headers["Location"]
            if not _lands_on_this_site(location):
                escaped.append((payload, attempt.__name__, location))
    assert escaped == []


def test_a_page_on_this_site_is_kept(app, create_person):
    email = create_person("ceo").email
    for target in ("/units/", "/decisions/12", "/units/?page=2&q=ab"):
        for attempt in (_sign_in_via_the_page, _sign_in_posting_next):
            response = attempt(app, email, target)
            assert response.headers["Location"] == target


def test_a_protected_page_sends_you_back_to_it_after_sign_in(app, create_person):
    email = create_person("ceo").email
    client = app.test_client()
    bounced = client.get("/units/")
    assert bounced.status_code == 302
    login_page = client.get(bounced.headers["Location"])
    token = csrf_from(login_page.text)
    next_value = unescape(login_page.text.split('name="next"')[1].split('value="')[1].split('"')[0])
    response = client.post(
        "/auth/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "csrf_token": token,
            "next": next_value,
        },
    )
    assert response.headers["Location"] == "/units/"
