"""WCAG 2.2 AA on an automated check (issue 8): axe-core (bundled by the
``axe-playwright-python`` package, MPL-2.0) run in chromium on each role's home page and a
representative set of pages of the demo. Every violation is listed with the page it is on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.browser.demo_site import site_fixture  # noqa: F401  (the demo, served once)
from workflow_app.extensions import db

pytestmark = pytest.mark.browser

#: WCAG 2.0, 2.1 and 2.2, levels A and AA (axe's tags for them).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


@pytest.fixture(scope="module")
def axe():
    axe_playwright = pytest.importorskip(
        "axe_playwright_python.sync_playwright",
        reason='the accessibility check needs axe-playwright-python (pip install -e ".[test]")',
    )
    return axe_playwright.Axe()


def violations(axe, page) -> list[str]:
    """axe's violations on the page now shown, one line each (rule, impact, where)."""
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    result = axe.run(page, options=options).response
    lines = []
    for violation in result["violations"]:
        targets = [" ".join(node["target"]) for node in violation["nodes"]][:5]
        lines.append(
            f"{page.url}: {violation['id']} ({violation['impact']}): {violation['help']} "
            f"at {targets}"
        )
    return lines


def demo_ids(site) -> dict[str, int]:
    """Ids of one object of each kind in the demo, for the page addresses."""
    from workflow_app.models.cases import Decision, EscalationCase
    from workflow_app.models.deadlines import Deadline
    from workflow_app.models.letters import Letter
    from workflow_app.models.meetings import Meeting
    from workflow_app.models.org import Person
    from workflow_app.models.plans import RecoveryPlan

    def first(*query):
        return db.session.scalar(sa.select(*query).limit(1))

    with site.app.app_context():
        case_id = first(EscalationCase.id, EscalationCase.level == "3")
        ids = {
            "unit": first(EscalationCase.unit_id, EscalationCase.id == case_id),
            "case": case_id,
            "decision": first(Decision.id, Decision.case_id == case_id),
            "pending": first(Decision.id, Decision.status == "pending")
            or first(Decision.id, Decision.case_id == case_id),
            "letter": first(Letter.id, Letter.case_id == case_id),
            "plan": first(RecoveryPlan.id, RecoveryPlan.case_id == case_id),
            "meeting": first(Meeting.id),
            "deadline": first(Deadline.id, Deadline.case_id == case_id),
            "person": first(Person.id),
        }
        db.session.remove()
    return ids


def pages_for(ids: dict[str, int]) -> dict[str, list[str]]:
    """Role -> the addresses checked while signed in as that role."""
    return {
        "ceo": [
            "/",
            "/units/",
            f"/units/{ids['unit']}",
            f"/cases/{ids['case']}",
            "/decisions/",
            f"/decisions/{ids['pending']}",
            f"/decisions/{ids['decision']}",
            f"/letters/{ids['letter']}",
            f"/plans/{ids['plan']}",
            f"/plans/{ids['plan']}/versions/1",
            "/meetings/",
            f"/meetings/{ids['meeting']}",
            "/deadlines/",
            f"/deadlines/{ids['deadline']}",
            "/proposals/",
            "/frameworks/",
            "/auth/settings",
            "/no-such-page",
            "/cases/99999999",
        ],
        "executive_director": ["/"],
        "performance_team": ["/", "/data/", "/admin/units"],
        "committee_member": ["/"],
        "directorate_lead": ["/", f"/units/{ids['unit']}"],
        "system_admin": [
            "/",
            "/admin/",
            "/admin/people",
            f"/admin/people/{ids['person']}",
            "/admin/outbox",
            "/admin/audit",
        ],
    }


def pages_of_newer_blueprints(app) -> list[str]:
    """The board reports and search, checked as soon as their blueprints are installed."""
    found = []
    for endpoint, path in (("reports.index", "/reports"), ("search.index", "/search/?q=surgery")):
        if endpoint in app.view_functions:
            found.append(path)
    return found


def test_signed_out_pages_meet_wcag_22_aa(page, site, axe):
    found = []
    for path in ("/auth/login", "/auth/reset/not-a-real-token"):
        page.goto(f"{site.base_url}{path}")
        found += violations(axe, page)
    # A failed sign-in shows the error summary and the field errors.
    page.goto(f"{site.base_url}/auth/login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    found += violations(axe, page)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "role",
    [
        "ceo",
        "executive_director",
        "performance_team",
        "committee_member",
        "directorate_lead",
        "system_admin",
    ],  # fmt: skip
)
def test_each_roles_pages_meet_wcag_22_aa(page, site, axe, role):
    paths = pages_for(demo_ids(site))[role]
    if role in ("ceo", "committee_member"):
        paths += pages_of_newer_blueprints(site.app)
    site.sign_in(page, role)
    found = []
    for path in paths:
        response = page.goto(f"{site.base_url}{path}")
        assert response is not None
        found += violations(axe, page)
    assert found == [], "\n".join(found)


def test_the_check_finds_a_violation_when_there_is_one(page, axe):
    """The check can fail: an unlabelled field and an image without text are reported."""
    page.set_content(
        '<html lang="en"><head><title>Bad</title></head><body><main><h1>Bad</h1>'
        '<img src="data:,"><input type="text"></main></body></html>'
    )
    found = " ".join(violations(axe, page))
    assert "image-alt" in found and "label" in found
