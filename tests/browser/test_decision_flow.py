"""Browser: the CEO signs in, opens Decisions, approves a proposal with their password."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db

pytestmark = pytest.mark.browser


@pytest.fixture
def decision_server(live_server):
    """The live app with the decisions blueprint, a CEO and a pending 1 -> 2b proposal."""
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.measures import FinancePosition
    from workflow_app.models.org import Person, RoleGrant, Unit
    from workflow_app.services.org import open_cases_for_unit
    from workflow_app.services.passwords import hash_password
    from workflow_app.services.review import run_review
    from workflow_app.web.decisions import bp

    base_url, app = live_server
    if "decisions" not in app.blueprints:
        app.register_blueprint(bp)  # before the first request; the lead registers it for real
    with app.app_context():
        ceo = Person(
            name="Carys Chief", email="ceo@example.nhs.uk", password_hash=hash_password(PASSWORD)
        )
        ceo.grants = [RoleGrant(role="ceo")]
        unit = Unit(code="SURG", name="Surgery", kind="operational_directorate", framework="iqpf")
        db.session.add_all([ceo, unit])
        db.session.flush()
        open_cases_for_unit(unit)
        db.session.add(
            FinancePosition(
                unit_id=unit.id,
                period=date(2026, 10, 1),
                ytd_variance=742_310,
                forecast_variance=968_400,
            )
        )
        db.session.commit()
        run_review(date(2026, 10, 1))
        db.session.commit()
        unit_id = unit.id

    def finance_level() -> str:
        with app.app_context():
            return db.session.scalar(
                sa.select(EscalationCase.level).where(
                    EscalationCase.unit_id == unit_id, EscalationCase.track == "finance"
                )
            )

    return base_url, finance_level


def test_the_ceo_approves_a_proposal_with_their_password(page, decision_server):
    base_url, finance_level = decision_server
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("E-mail address").fill("ceo@example.nhs.uk")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()

    page.goto(f"{base_url}/decisions/")
    assert page.get_by_role("heading", level=1).inner_text() == "Decisions awaiting me"
    with page.expect_navigation():
        page.locator("table").first.get_by_role("link").first.click()
    page.get_by_label("Approve: move to Level 2b (Financial)").check()
    page.get_by_label("Reason for your decision").fill("Overspend confirmed")
    page.get_by_label("Your password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign the decision").click()

    banner = page.locator(".nhsuk-notification-banner--success")
    assert "Approved: Surgery's Finance track is now at Level 2b (Financial)" in (
        banner.inner_text()
    )
    assert finance_level() == "2b"
