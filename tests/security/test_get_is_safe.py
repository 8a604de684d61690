"""Check 13 (RELIABILITY-ANCHORS section 7), the part tests/security/test_csrf_everywhere.py
does not cover: no GET changes state, and the session cookie is SameSite=Lax (so a page on
another site cannot send it with a POST).

Every GET route of the app, filled with unit B's objects, is requested by every role; the
digest of every row of every table is the same before and after the whole crawl.
"""

from __future__ import annotations

from tests.security.conftest import ROLES, snapshot
from tests.security.test_access_matrix import path_of

#: GET routes that write by design, with the reason; the crawl proves nothing else does.
WRITES_BY_DESIGN = {
    # The meeting's data pack is frozen when it is first opened, so every reader sees the
    # same figures (decision 0018). It is requested once, first, and then compared.
    "meetings.pack",
    "meetings.pack_pdf",
}

#: PDFs take seconds to draw and show the same data as their HTML pages, which every role
#: crawls: they are fetched by one organisation-wide role and by the refused ones.
PDF_ROLES = {"ceo", "directorate_lead", "anonymous"}


def _get_rules(app):
    return sorted(
        (r for r in app.url_map.iter_rules() if "GET" in r.methods),
        key=lambda r: r.rule,
    )


def test_crawling_every_get_route_as_every_role_changes_nothing(app, world, clients):
    rules = _get_rules(app)
    # First opening of the data pack freezes it (by design); do that before the snapshot.
    for rule in rules:
        if rule.endpoint in WRITES_BY_DESIGN:
            assert clients["ceo"].get(path_of(rule, world.ids)).status_code == 200
    before = snapshot()
    crawled, errors, unfilled = 0, [], set()
    for role in ROLES:
        for rule in rules:
            if rule.endpoint.endswith("_pdf") and role not in PDF_ROLES:
                continue
            try:
                path = path_of(rule, world.ids)
            except KeyError:  # a parameter the world has no object for (e.g. API tokens)
                unfilled.add(rule.rule)
                continue
            status = clients[role].get(path).status_code
            crawled += 1
            if status >= 500:
                errors.append(f"GET {path} as {role}: {status}")
        # One digest per role keeps the crawl fast; a change names the role to look at.
        after = snapshot()
        changed = sorted(k for k, v in after.items() if before[k] != v)
        if changed:
            errors.append(f"crawling as {role} changed {changed}")
            before = after
    assert errors == []
    assert crawled >= 50 * len(ROLES)
    assert len(unfilled) <= 5, sorted(unfilled)


def test_the_session_cookie_is_samesite_lax_so_other_sites_cannot_post_with_it(app, client):
    response = client.get("/auth/login")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
