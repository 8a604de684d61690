"""Check 12: every route x every role against an explicit permission table, with IDOR.

The tables below are the specification. A new route without an entry fails
``test_every_route_is_in_the_table``. Unit B's objects fill every URL; the directorate lead
is the lead of unit A, so on B's objects they must get 404 (docs/decisions/0006).
"""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.security.conftest import ROLES, snapshot

SIGNED_IN = frozenset(ROLES) - {"anonymous"}
ORG = SIGNED_IN - {"directorate_lead"}  # organisation-wide roles
UNITS_ADMIN = frozenset({"performance_team", "system_admin"})
PUBLIC = frozenset(ROLES)
NOBODY = frozenset()

#: endpoint -> who may GET it (200) in the world; the others get 302 to sign-in
#: (anonymous), 404 (the lead of unit A on unit B's objects) or 403.
GET_ALLOWED: dict[str, frozenset[str]] = {
    "home.index": SIGNED_IN,
    "static": PUBLIC,
    "auth.login": frozenset({"anonymous"}),  # signed-in people are sent home (302)
    "auth.reset": NOBODY,  # an unknown token: 404 for everyone
    "auth.change_password": SIGNED_IN,
    "auth.settings": SIGNED_IN,
    "admin.index": UNITS_ADMIN,
    "admin.audit": ORG,
    "admin.edit_measure": UNITS_ADMIN,
    "admin.outbox": UNITS_ADMIN,
    "admin.outbox_message": UNITS_ADMIN,
    "admin.people": frozenset({"system_admin"}),
    "admin.person": frozenset({"system_admin"}),
    "admin.new_person": frozenset({"system_admin"}),
    "admin.units": UNITS_ADMIN,
    "admin.edit_unit": UNITS_ADMIN,
    "admin.new_measure": UNITS_ADMIN,
    "admin.new_unit": UNITS_ADMIN,
    "api_tokens.index": frozenset({"system_admin"}),
    "api_tokens.new": frozenset({"system_admin"}),
    "api_tokens.show": NOBODY,  # no token in the world: 404 (tests/api/test_token_admin.py)
    "cases.show": ORG,
    "data.index": UNITS_ADMIN,
    "data.preview": UNITS_ADMIN,
    "data.rejects": UNITS_ADMIN,
    "data.template": UNITS_ADMIN,
    "data.upload": UNITS_ADMIN,
    "deadlines.index": SIGNED_IN,
    "deadlines.show": ORG,
    "decisions.index": SIGNED_IN,  # each sees what awaits their own signature
    "decisions.show": ORG,
    "decisions.letter_preview": ORG,
    "decisions.raise_case": frozenset({"ceo", "executive_director", "performance_team"}),
    # The world's case is on framework A, which has no formal notifications: 403 for all.
    "decisions.notify_case": NOBODY,
    "frameworks.index": SIGNED_IN,
    "frameworks.show": SIGNED_IN,
    "letters.show": ORG,
    "letters.pdf": NOBODY,  # the PDF is made by the sweep: not yet, 404
    "meetings.index": SIGNED_IN,
    "meetings.show": ORG,
    "meetings.ics": NOBODY,  # the meeting is not scheduled yet: 404
    "meetings.pack": ORG,
    "meetings.pack_pdf": ORG,
    "plans.show": ORG,
    "plans.edit": frozenset({"performance_team", "system_admin"}),
    "plans.export_pdf": ORG,
    "plans.export_xlsx": ORG,
    "plans.on_a_page": ORG,
    "plans.on_a_page_pdf": ORG,
    "plans.on_a_page_xlsx": ORG,
    "plans.review": NOBODY,  # a draft has nothing to review: 302 back to the plan
    "plans.monthly_updates": NOBODY,  # a draft is not in delivery: 403
    "plans.version": NOBODY,  # no version before submission: 404
    "proposals.index": SIGNED_IN,
    "proposals.show": ORG,
    "reports.index": ORG,  # a directorate lead: 403 (docs/decisions/0023)
    "reports.show": ORG,
    "reports.issued": NOBODY,  # no report issued in the world: 404 (tests/reports/)
    "reports.issued_pdf": NOBODY,
    "reports.issued_xlsx": NOBODY,
    "search.index": SIGNED_IN,  # each finds only the rows of the units they may see
    "units.index": SIGNED_IN,
    "units.show": ORG,
    "units.new_concern": frozenset({"ceo", "executive_director", "performance_team"}),
    "units.measures": ORG,
    "units.scorecard": SIGNED_IN,
}

#: What "not allowed" looks like when it is not 403/404 (documented special cases).
GET_SPECIAL = (
    {("auth.login", role): 302 for role in SIGNED_IN}
    | {("plans.review", role): 302 for role in ORG}
    | {
        (endpoint, role): 404
        for endpoint in ("auth.reset", "letters.pdf", "meetings.ics", "plans.version")
        for role in ORG
    }
    | {
        (endpoint, role): 404
        for endpoint in ("reports.issued", "reports.issued_pdf", "reports.issued_xlsx")
        for role in ORG
    }
)

#: State-changing routes (POST); the value is who may change state through it.
POST_ALLOWED: dict[str, frozenset[str]] = {
    "auth.login": PUBLIC,
    "auth.logout": SIGNED_IN,
    "auth.change_password": SIGNED_IN,  # their own account only
    "auth.settings": SIGNED_IN,  # their own settings only
    "auth.reset": PUBLIC,  # with a valid token
    "admin.edit_measure": UNITS_ADMIN,
    "admin.retry_message": UNITS_ADMIN,
    "admin.person": frozenset({"system_admin"}),
    "admin.disable": frozenset({"system_admin"}),
    "admin.enable": frozenset({"system_admin"}),
    "admin.reset": frozenset({"system_admin"}),
    "admin.grant": frozenset({"system_admin"}),
    "admin.revoke": frozenset({"system_admin"}),
    "admin.new_person": frozenset({"system_admin"}),
    "admin.edit_unit": UNITS_ADMIN,
    "admin.new_measure": UNITS_ADMIN,
    "admin.new_unit": UNITS_ADMIN,
    "api_tokens.new": frozenset({"system_admin"}),
    "api_tokens.revoke": frozenset({"system_admin"}),
    "data.load": UNITS_ADMIN,
    "data.upload": UNITS_ADMIN,
    "deadlines.complete": frozenset({"ceo", "executive_director", "performance_team"}),
    "deadlines.pause": frozenset({"ceo", "executive_director", "performance_team"}),
    "deadlines.resume": frozenset({"ceo", "executive_director", "performance_team"}),
    "decisions.sign": frozenset({"ceo", "executive_director"}),
    "decisions.raise_case": frozenset({"ceo", "executive_director", "performance_team"}),
    "decisions.notify_case": NOBODY,  # framework A has no formal notifications
    "meetings.attendance": frozenset({"ceo", "executive_director", "performance_team"}),
    "meetings.cancel": frozenset({"ceo", "performance_team"}),
    "meetings.add_member": frozenset({"ceo", "performance_team"}),
    "meetings.outcome": frozenset({"ceo", "performance_team"}),
    "meetings.schedule": frozenset({"ceo", "performance_team"}),
    "plans.complete_delivery": frozenset({"ceo", "executive_director", "performance_team"}),
    "plans.edit": frozenset({"performance_team"}),
    "plans.review": frozenset({"ceo", "executive_director", "performance_team"}),
    "plans.begin_review": frozenset({"ceo", "executive_director", "performance_team"}),
    "plans.monthly_updates": frozenset({"performance_team"}),
    "plans.withdraw_plan": frozenset({"ceo", "executive_director", "performance_team"}),
    "plans.start": frozenset({"performance_team"}),
    "proposals.run": frozenset({"performance_team"}),
    "reports.issue": frozenset({"ceo", "performance_team"}),
    "units.new_concern": frozenset({"ceo", "executive_director", "performance_team"}),
}

#: Routes that concern only the signed-in person's own account.
OWN_ACCOUNT = {"auth.login", "auth.logout", "auth.change_password", "auth.settings"}
PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
UNIT_B_OBJECT_PARAMS = {
    "unit_id", "case_id", "decision_id", "letter_id", "deadline_id", "plan_id", "meeting_id",
}  # fmt: skip
PER_ENDPOINT = {
    "data.template": {"name": "performance"},
    "api_tokens.show": {"token_id": 1},  # the world has no API token: 404 for the admin
    "api_tokens.revoke": {"token_id": 1},
    "reports.show": {"kind": "executive_overview", "month": "2026-10"},
    "reports.issue": {"kind": "executive_overview", "month": "2026-10"},
    "reports.issued": {"report_id": 1},  # nothing issued in the world: 404
    "reports.issued_pdf": {"report_id": 1},
    "reports.issued_xlsx": {"report_id": 1},
}


def web_rules(app):
    """Every route but the JSON API's: /api/v1 authenticates by bearer token only, so a
    session gets 401 there whatever the role; tests/api/test_resources.py holds the API's
    matrix by token and tests/api/test_auth.py the session refusal."""
    return [r for r in app.url_map.iter_rules() if not r.endpoint.startswith("api.")]


def path_of(rule, ids) -> str:
    values = ids | PER_ENDPOINT.get(rule.endpoint, {})
    return PARAM.sub(lambda m: str(values[m.group(1)]), rule.rule)


def is_unit_b_object(rule) -> bool:
    """Unit B's objects outside administration (whose role check comes first: 403)."""
    return not rule.endpoint.startswith("admin.") and bool(
        set(PARAM.findall(rule.rule)) & UNIT_B_OBJECT_PARAMS
    )


def signs_in(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/auth/login")


def test_every_route_is_in_the_table(app):
    gets = {r.endpoint for r in web_rules(app) if "GET" in r.methods}
    posts = {r.endpoint for r in web_rules(app) if r.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    assert gets - GET_ALLOWED.keys() == set(), "add the new route to GET_ALLOWED"
    assert posts - POST_ALLOWED.keys() == set(), "add the new route to POST_ALLOWED"
    assert GET_ALLOWED.keys() - gets == set(), "a route in GET_ALLOWED no longer exists"
    assert POST_ALLOWED.keys() - posts == set(), "a route in POST_ALLOWED no longer exists"
    assert not any(r.methods & {"PUT", "PATCH", "DELETE"} for r in app.url_map.iter_rules())


def test_get_matrix(app, world, clients):
    """Every GET route x every role; never a 5xx; no unit B name leaks to unit A's lead."""
    problems, checked = [], 0
    for rule in web_rules(app):
        if "GET" not in rule.methods:
            continue
        path = path_of(rule, world.ids)
        for role in ROLES:
            response = clients[role].get(path)
            checked += 1
            status = response.status_code
            if role in GET_ALLOWED[rule.endpoint]:
                ok = status == 200
            elif (rule.endpoint, role) in GET_SPECIAL:
                ok = status == GET_SPECIAL[(rule.endpoint, role)]
            elif role == "anonymous":
                ok = signs_in(response) or (rule.endpoint == "auth.reset" and status == 404)
            elif role == "directorate_lead" and is_unit_b_object(rule):
                ok = status == 404
            else:
                ok = status in (403, 404)
            if role == "directorate_lead" and status == 200 and "Unit B" in response.text:
                problems.append(f"{path}: the lead of unit A sees unit B")
            if not ok or status >= 500:
                problems.append(f"GET {path} as {role}: {status}")
    assert checked >= 55 * len(ROLES)
    assert problems == []


def test_post_matrix_refusals_change_nothing(app, world, clients):
    """Every state-changing route, with a valid CSRF token and an empty form, by everyone who
    may not use it: anonymous -> sign in; unit A's lead on B's objects -> 404; others
    403/404/400; the database is unchanged, row by row. Authorised roles: never a 5xx."""
    tokens = {
        role: csrf_from(
            clients[role].get("/auth/login" if role == "anonymous" else "/auth/settings").text
        )
        for role in ROLES
    }
    rules = sorted(
        (r for r in web_rules(app) if "POST" in r.methods),
        key=lambda r: (r.endpoint == "auth.logout", r.rule),
    )
    # Refused roles first (the world must stay intact), then the authorised ones.
    order = ["anonymous", "directorate_lead", "committee_member"] + [
        r for r in ROLES if r not in ("anonymous", "directorate_lead", "committee_member")
    ]
    problems, checked = [], 0
    for role in order:
        for rule in rules:
            if rule.endpoint in OWN_ACCOUNT and role != "anonymous":
                continue  # covered in tests/web/test_auth.py; logout would end the client
            path = path_of(rule, world.ids)
            allowed = role in POST_ALLOWED[rule.endpoint]
            before = None if allowed else snapshot()
            response = clients[role].post(path, data={"csrf_token": tokens[role]})
            checked += 1
            status = response.status_code
            if status >= 500:
                problems.append(f"POST {path} as {role}: {status}")
            if allowed:
                continue
            if role == "anonymous":
                ok = signs_in(response) or status in (401, 404)  # plan forms: 401 (0015)
            elif role == "directorate_lead" and is_unit_b_object(rule):
                ok = status == 404
            else:
                ok = status in (400, 403, 404, 409) or (
                    status == 302 and rule.endpoint in _REFUSED_WITH_FLASH
                )
            changed = sorted(k for k, v in snapshot().items() if before[k] != v)
            if not ok or changed:
                problems.append(f"POST {path} as {role}: {status}, changed {changed}")
    assert checked >= 30 * len(ROLES)
    assert problems == []


#: Refusals answered by a redirect back with a message (the row check proves no change).
_REFUSED_WITH_FLASH = {
    "deadlines.complete",
    "deadlines.pause",
    "deadlines.resume",
    "meetings.attendance",
    "plans.review",
    "plans.withdraw_plan",
    "plans.complete_delivery",
    "plans.begin_review",
    "plans.start",  # the plan is already open: back to it
    "proposals.run",  # system_admin: 302 without change (runs nothing new? to confirm)
}
