"""Browser smoke test: each demo role signs in and sees its own home page."""

from __future__ import annotations

import pytest

from workflow_app.demo import demo_logins, load_demo
from workflow_app.extensions import db

pytestmark = pytest.mark.browser

EXPECTED_HEADINGS = {
    "ceo": "Chief Executive overview",
    "executive_director": "Executive overview",
    "performance_team": "Performance team overview",
    "committee_member": "Committee assurance",
    "directorate_lead": "Your units",
    "system_admin": "System administration",
}


@pytest.fixture
def demo_server(live_server):
    base_url, app = live_server
    with app.app_context():
        load_demo()
        db.session.commit()
    return base_url


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def test_each_role_signs_in_and_sees_its_home_page(page, demo_server, tmp_path):
    seen = {}
    for login in demo_logins():
        sign_in(page, demo_server, login.email, login.password)
        heading = page.get_by_role("heading", level=1).inner_text()
        seen[login.role] = heading
        assert login.name in page.content()
        rows = page.locator("table.escalate-register tbody tr").count()
        if login.role == "directorate_lead":
            assert rows == 1, "a lead sees only their own unit"
        else:
            assert rows >= 10
        with page.expect_navigation():
            page.get_by_role("button", name="Sign out").click()
        assert "/auth/login" in page.url
    assert seen == {role: EXPECTED_HEADINGS[role] for role in seen}
    assert set(seen) == set(EXPECTED_HEADINGS)


def test_the_nhs_frontend_styles_load_from_this_server(page, demo_server):
    responses = []
    page.on("response", lambda r: responses.append((r.url, r.status)))
    page.goto(f"{demo_server}/auth/login")
    css = [(url, status) for url, status in responses if url.endswith(".css")]
    assert css and all(url.startswith(demo_server) and status == 200 for url, status in css)
    header = page.locator("header.nhsuk-header")
    assert header.count() == 1
    # The NHS blue header is applied by the vendored stylesheet.
    colour = header.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(0, 94, 184)"


def test_wrong_password_shows_an_error_summary(page, demo_server):
    login = demo_logins()[0]
    sign_in(page, demo_server, login.email, "not the password")
    assert page.get_by_text("Enter a correct e-mail address and password").count() >= 1
    assert "/auth/login" in page.url
