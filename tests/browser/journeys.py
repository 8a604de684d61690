"""The steps the decision journeys share, driven through the real pages: signing in, opening a
decision from "Decisions awaiting me", signing it with the password, reading the case, its
letter and the mail outbox; plus a snapshot of everything a refused decision must leave as it
was, and helpers to set data up in the live app's database."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.conftest import PASSWORD
from workflow_app.extensions import db

SUCCESS_BANNER = ".nhsuk-notification-banner--success .nhsuk-notification-banner__heading"
ERROR_SUMMARY = ".nhsuk-error-summary"


@dataclass
class Journey:
    """The live app (for set-up and checks) and a browser tab on it, signed in as one person.

    Each sign-in opens a new browser context, as a different person's browser would be: a
    late response of the previous person's page (e.g. a static file refreshing the session
    cookie) cannot then leak their session into the next person's.
    """

    browser: Any
    base_url: str
    app: Flask
    page: Any = None
    context: Any = None

    def new_tab(self) -> None:
        """A new, signed-out browser context and tab (closing the previous one)."""
        self.close()
        self.context = self.browser.new_context()
        self.page = self.context.new_page()

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None

    # --- the database, from the test's side --------------------------------------------------

    def db(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in an app context of the live app (committing is up to ``work``)."""
        with self.app.app_context():
            try:
                return work()
            finally:
                db.session.remove()

    def snapshot(self, unit_code: str) -> dict[str, Any]:
        """Everything a decision could change for one unit (levels, decisions, signatures,
        letters, deadlines, e-mails, audit events), to compare before and after a refusal."""
        return self.db(lambda: unit_state(unit_code))

    def assert_rejection_changed_nothing(self, unit_code: str, before: dict[str, Any]) -> None:
        """After a rejection: the same levels, level history and deadlines as ``before``, no
        letter and no decision e-mail."""
        after = self.snapshot(unit_code)
        assert after["levels"] == before["levels"]
        assert after["level_changes"] == before["level_changes"]
        assert after["deadlines"] == before["deadlines"]
        assert after["letters"] == 0
        assert self.db(decision_emails) == []

    # --- signing in and out ------------------------------------------------------------------

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        """Sign in through the form, in a new browser context."""
        self.new_tab()
        response = self.page.goto(f"{self.base_url}/auth/login")
        assert response is not None and response.ok, self.page.content()
        self.page.get_by_label("E-mail address").fill(email)
        self.page.get_by_label("Password").fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        assert "/auth/login" not in self.page.url, self.page.inner_text("main")

    def nav(self, label: str) -> None:
        """Follow a link of the header's menu, opening its "More" list first when the link
        is one of those the header folds away on a narrow screen (as a person would)."""
        menu = self.page.get_by_role("navigation", name="Menu")
        link = menu.get_by_role("link", name=label, exact=True).first
        if not link.is_visible():
            menu.locator("#toggle-menu").click()
            link = menu.get_by_role("link", name=label, exact=True).locator("visible=true").first
        with self.page.expect_navigation():
            link.click()

    # --- decisions ---------------------------------------------------------------------------

    def decisions_table(self, which: str = "mine"):
        """The "Awaiting your signature" (mine) or "Awaiting others" table of Decisions."""
        caption = (
            "Decisions you can sign now" if which == "mine" else "Decisions awaiting someone else"
        )
        return self.page.locator("table", has=self.page.locator("caption", has_text=caption))

    def open_decisions(self) -> None:
        self.nav("Decisions")
        assert self.heading() == "Decisions awaiting me"

    def open_decision(self, unit_name: str, which: str = "mine") -> None:
        """From Decisions, open the one row for ``unit_name`` in the chosen table."""
        rows = self.decisions_table(which).locator("tbody tr", has_text=unit_name)
        assert rows.count() == 1, self.decisions_table(which).inner_text()
        with self.page.expect_navigation():
            rows.first.get_by_role("link").first.click()

    def sign(
        self,
        outcome: str,
        reason: str,
        *,
        meeting: str | None = None,
        password: str = PASSWORD,
        other_level: str | None = None,
    ) -> int:
        """Fill in and send the sign form; returns the response's HTTP status.

        ``outcome`` is the visible label of the radio (e.g. "Approve: move to Level 2a",
        "Approve at a different level", "Reject"); ``other_level`` the option value of the
        level to approve instead.
        """
        page = self.page
        page.get_by_label(outcome, exact=True).check()
        if other_level is not None:
            page.get_by_label("Approve at this level instead").select_option(other_level)
        page.get_by_label("Reason for your decision").fill(reason)
        if meeting is not None:
            page.get_by_label("Meeting where this was agreed").fill(meeting)
        page.get_by_label("Your password").fill(password)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Sign the decision").click()
        return navigation.value.status

    def banner(self) -> str:
        return self.page.locator(SUCCESS_BANNER).inner_text()

    def problem(self) -> str:
        return self.page.locator(ERROR_SUMMARY).inner_text()

    def heading(self) -> str:
        return self.page.get_by_role("heading", level=1).inner_text()

    def main_text(self) -> str:
        return self.page.locator("main").inner_text()

    def section(self, heading: str) -> str:
        """The text between an h2 and the next h2 of the page (e.g. "Deadlines")."""
        return self.page.evaluate(
            """(heading) => {
                const h2 = [...document.querySelectorAll("main h2")]
                    .find((h) => h.textContent.trim() === heading);
                if (!h2) return null;
                let text = "", node = h2.nextElementSibling;
                while (node && node.tagName !== "H2") {
                    text += node.innerText + "\\n";
                    node = node.nextElementSibling;
                }
                return text;
            }""",
            heading,
        )

    def post_sign_form_by_hand(self, decision_id: int, fields: dict[str, str]):
        """POST the sign form without the page offering it (a tampered or forged request),
        with the session's real CSRF token; returns the navigation response."""
        token = self.page.locator("input[name=csrf_token]").first.get_attribute("value")
        script = """([action, fields]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            for (const [name, value] of Object.entries(fields)) {
                const input = document.createElement("input");
                input.type = "hidden";
                input.name = name;
                input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }"""
        action = f"/decisions/{decision_id}/sign"
        with self.page.expect_navigation() as navigation:
            self.page.evaluate(script, [action, {"csrf_token": token, **fields}])
        return navigation.value

    # --- the case, its letters and the outbox ------------------------------------------------

    def open_case_from_decision(self) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("link", name="Open the case").click()

    def current_level_text(self) -> str:
        return self.page.locator("main p", has_text="Current level:").inner_text()

    def open_letter(self, title: str) -> str:
        """Open the letter listed on the case page under ``title``; returns its text."""
        with self.page.expect_navigation():
            self.page.locator("main ul li a", has_text=title).first.click()
        return self.page.locator("body").inner_text()

    def outbox(self, admin_email: str) -> list[dict[str, str]]:
        """Sign in as an administrator and read Administration -> Mail outbox."""
        self.sign_in(admin_email)
        self.nav("Administration")
        with self.page.expect_navigation():
            self.page.get_by_role("link", name="Mail outbox").click()
        assert self.heading() == "Mail outbox"
        rows = []
        for row in self.page.locator("main table tbody tr").all():
            cells = [c.inner_text().strip() for c in row.locator("td").all()]
            if len(cells) == 4:
                rows.append({"to": cells[1], "subject": cells[2], "status": cells[3]})
        return rows


# --- set-up in the live app's database -------------------------------------------------------


def add_person(name: str, email: str, *roles: str):
    """A person with ``roles`` and the test password (caller commits)."""
    from workflow_app.models.org import Person, RoleGrant
    from workflow_app.services.passwords import hash_password

    person = Person(name=name, email=email, password_hash=hash_password(PASSWORD))
    person.grants = [RoleGrant(role=role) for role in roles]
    db.session.add(person)
    db.session.flush()
    return person


def add_unit(code: str, name: str, framework: str, kind: str, **values):
    """A unit with its level-1 cases (caller commits)."""
    from workflow_app.models.org import Unit
    from workflow_app.services.org import open_cases_for_unit

    unit = Unit(code=code, name=name, kind=kind, framework=framework, **values)
    db.session.add(unit)
    db.session.flush()
    open_cases_for_unit(unit)
    return unit


def add_domain(code: str, name: str):
    from workflow_app.models.org import Domain

    domain = db.session.scalar(sa.select(Domain).where(Domain.code == code))
    if domain is None:
        domain = Domain(code=code, name=name)
        db.session.add(domain)
        db.session.flush()
    return domain


def delegate(delegator, delegate_to, role: str, reason: str = "Annual leave"):
    """An active delegation of ``role`` for a week (caller commits)."""
    from workflow_app.models.cases import Delegation

    now = datetime.now(UTC)
    db.session.add(
        Delegation(
            delegator_id=delegator.id,
            delegate_id=delegate_to.id,
            role=role,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=7),
            reason=reason,
        )
    )


def case_of(unit_code: str, track: str):
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.org import Unit

    return db.session.scalar(
        sa.select(EscalationCase)
        .join(Unit, Unit.id == EscalationCase.unit_id)
        .where(Unit.code == unit_code, EscalationCase.track == track)
    )


def pending_decision_id(unit_code: str, track: str) -> int:
    from workflow_app.models.cases import Decision

    case = case_of(unit_code, track)
    (decision_id,) = db.session.scalars(
        sa.select(Decision.id).where(Decision.case_id == case.id, Decision.status == "pending")
    ).all()
    return decision_id


def unit_state(unit_code: str) -> dict[str, Any]:
    """Levels, decisions (status, level, rule, note), signatures, letters, deadlines,
    e-mails and audit events (sign-ins aside) touching one unit, in plain data."""
    from workflow_app.models.audit import AuditEvent
    from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase, LevelChange
    from workflow_app.models.deadlines import Deadline
    from workflow_app.models.letters import Letter
    from workflow_app.models.org import Unit
    from workflow_app.models.outbox import OutboxMessage

    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code))
    cases = db.session.scalars(
        sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id)
    ).all()
    case_ids = [c.id for c in cases]
    decisions = db.session.scalars(
        sa.select(Decision).where(Decision.case_id.in_(case_ids)).order_by(Decision.id)
    ).all()
    decision_ids = [d.id for d in decisions]
    return {
        "levels": {c.track: (c.level, c.version) for c in cases},
        "decisions": [
            (d.id, d.status, d.from_level, d.to_level, d.signature_rule, d.decision_note)
            for d in decisions
        ],
        "signatures": db.session.scalar(
            sa.select(sa.func.count(DecisionSignature.id)).where(
                DecisionSignature.decision_id.in_(decision_ids)
            )
        ),
        "level_changes": db.session.scalar(
            sa.select(sa.func.count(LevelChange.id)).where(LevelChange.case_id.in_(case_ids))
        ),
        "letters": db.session.scalar(
            sa.select(sa.func.count(Letter.id)).where(Letter.case_id.in_(case_ids))
        ),
        "deadlines": sorted(
            db.session.execute(
                sa.select(Deadline.kind, Deadline.status).where(Deadline.unit_id == unit.id)
            ).all()
        ),
        "emails": db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))),
        "audit": db.session.scalars(
            sa.select(AuditEvent.action)
            .where(~AuditEvent.action.startswith("login."))
            .order_by(AuditEvent.id)
        ).all(),
    }


def decision_emails() -> list[tuple[str, str, str]]:
    """(to, subject, status) of every decision notification in the outbox."""
    from workflow_app.models.outbox import OutboxMessage

    return sorted(
        db.session.execute(
            sa.select(OutboxMessage.to_address, OutboxMessage.subject, OutboxMessage.status).where(
                OutboxMessage.kind == "decision"
            )
        ).all()
    )


def normalise(text: str) -> str:
    """Collapse runs of white space, for comparing rendered text."""
    return re.sub(r"\s+", " ", text).strip()
