"""Each role's home page in a real browser on the demo health board (issue 8)."""

from __future__ import annotations

import pytest

from tests.browser.demo_site import site_fixture  # noqa: F401  (the demo, served once)

pytestmark = pytest.mark.browser


def headings(page) -> list[str]:
    return [h.strip() for h in page.locator("main h2").all_inner_texts()]


@pytest.mark.parametrize("role", ["ceo", "executive_director", "performance_team"])
def test_the_executive_home_page_answers_what_needs_deciding_and_where_units_stand(
    page, site, role
):
    site.sign_in(page, role)
    shown = headings(page)
    for heading in ("Units by level", "Overdue obligations", "Upcoming meetings",
                    "Open escalations", "Register of escalation levels"):  # fmt: skip
        assert heading in shown, (heading, shown)
    counts = page.locator(".escalate-level-counts li").all_inner_texts()
    total = sum(int(text.split()[-2]) for text in counts)
    assert total == page.locator("table.escalate-register tbody tr").count() >= 10
    assert any(text.startswith("Level 3") for text in counts)
    # Every escalated case says how long it has been at its level.
    durations = page.locator("table.escalate-open-cases tbody td:last-child").all_inner_texts()
    assert durations and all("month" in d or "day" in d or "year" in d for d in durations)
    # The register's level links open the case, whose timeline lists its history.
    page.locator("table.escalate-open-cases tbody a").first.click()
    page.wait_for_url("**/cases/*")
    assert page.locator("ol.escalate-timeline > li").count() >= 3
    assert page.get_by_role("heading", name="Timeline").count() == 1


def test_the_lead_home_page_shows_their_unit_its_obligations_and_letters(page, site):
    site.sign_in(page, "directorate_lead")
    assert page.get_by_role("heading", level=1).inner_text() == "Your units"
    assert page.locator("table.escalate-register tbody tr").count() == 1
    assert "Surgery" in page.locator("table.escalate-register").inner_text()
    shown = headings(page)
    assert "Your obligations" in shown and "Your letters" in shown
    assert "Units by level" not in shown
    letters = page.locator("ul.escalate-letters a")
    assert letters.count() >= 1
    letters.first.click()
    page.wait_for_url("**/letters/*")
    assert page.url.rsplit("/", 1)[-1].isdigit()


def test_the_committee_home_page_is_read_only(page, site):
    site.sign_in(page, "committee_member")
    assert page.get_by_role("heading", level=1).inner_text() == "Committee assurance"
    assert page.locator("main form, main button, main input").count() == 0
    assert "read-only" in page.locator(".escalate-read-only").inner_text()
    assert page.locator("table.escalate-register tbody tr").count() >= 10
    assert "Units by level" in headings(page)
