"""Stored XSS (issue 9): every free-text field people type, shown back on any page.

The world of tests/security/conftest.py gets a concern, and then every free-text column
(names, reasons, concern text, plan text, minutes, comments, titles, filenames, subjects)
is overwritten with markup carrying a marker of its own. Every GET page, as the roles that
see the most, must show each marker escaped and never as markup; the fields people see
most are required to appear at all, so the check cannot pass by showing nothing.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.security.test_access_matrix import path_of
from workflow_app.extensions import db

#: table -> free-text columns people type (kinds, codes, statuses and hashes are not).
FREE_TEXT = {
    "people": ["name", "job_title"],
    "units": ["name"],
    "domains": ["name"],
    "measures": ["name"],
    "concerns": ["summary", "evidence"],
    "decisions": ["reason", "evidence", "meeting_reference", "decision_note"],
    "deadlines": ["title", "cancelled_reason"],
    "deadline_pauses": ["reason"],
    "delegations": ["reason"],
    "recovery_plans": [
        "title", "summary", "risk_assessment", "support_requested", "headlines", "narrative",
        "queries",
    ],
    "plan_actions": ["description", "expected_effect", "resources", "deliverable", "milestones"],
    "plan_review_comments": ["comment"],
    "plan_status_changes": ["note"],
    "plan_action_updates": ["narrative"],
    "meetings": ["title", "location", "minutes", "decisions_text", "cancelled_reason"],
    "meeting_invitees": ["attendance_note"],
    "import_batches": ["filename"],
    "outbox_messages": ["subject", "body_text", "last_error"],
    "job_runs": ["summary"],
}  # fmt: skip

#: Fields that must be shown somewhere in the crawl (so their escaping is really checked).
MUST_SHOW = {
    "people.name", "units.name", "measures.name", "concerns.summary", "decisions.reason",
    "deadlines.title", "recovery_plans.title", "meetings.title", "import_batches.filename",
    "outbox_messages.subject",
}  # fmt: skip

RAW = re.compile(r"<xss-\d+")


def _payload(n: int) -> str:
    return f"\"'><xss-{n} onmouseover=alert({n})>{{{{7*7}}}}</xss-{n}>"


def _poison() -> dict[int, str]:
    markers = {}
    n = 0
    for table_name, columns in FREE_TEXT.items():
        table = db.metadata.tables[table_name]
        for column in columns:
            n += 1
            markers[n] = f"{table_name}.{column}"
            db.session.execute(sa.update(table).values({column: _payload(n)}))
    db.session.commit()
    return markers


def test_no_free_text_field_is_ever_shown_as_markup(app, world, clients):
    from workflow_app.models.org import Domain
    from workflow_app.services.concerns import record_concern

    record_concern(
        world.people["performance_team"],
        world.unit_b,
        domain=db.session.scalar(sa.select(Domain)),
        kind="inspection",
        severity="high",
        summary="placeholder",
        evidence="placeholder",
    )
    db.session.commit()
    markers = _poison()
    shown, raw_hits, pages = set(), [], 0
    for role in ("ceo", "performance_team", "system_admin"):
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint.endswith(("_pdf", "_xlsx", "static")):
                continue
            try:
                path = path_of(rule, world.ids)
            except KeyError:
                continue
            response = clients[role].get(path)
            if not response.content_type.startswith("text/html") or response.status_code != 200:
                continue
            pages += 1
            text = response.text
            if RAW.search(text):
                raw_hits.append(f"{path} as {role}: {RAW.findall(text)[:3]}")
            for n in map(int, re.findall(r"&lt;xss-(\d+)", text)):
                shown.add(markers[n])
            if "&gt;49&lt;/xss-" in text:  # the text was evaluated as a template
                raw_hits.append(f"{path} as {role}: a template expression was evaluated")
    assert raw_hits == []
    assert pages >= 40
    assert MUST_SHOW - shown == set(), f"never shown: {sorted(MUST_SHOW - shown)}"
    print(f"{len(shown)} of {len(markers)} fields shown on {pages} pages, always escaped")
