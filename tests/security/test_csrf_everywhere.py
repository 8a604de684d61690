"""CSRF on every state-changing route: a signed-in person who may use the route, posting
without the form's token (as a page on another site would), is refused and nothing changes."""

from __future__ import annotations

from tests.security.conftest import snapshot
from tests.security.test_access_matrix import OWN_ACCOUNT, POST_ALLOWED, path_of, web_rules

#: The plan forms check the token themselves and give the typed text back (decision 0015,
#: tests/plans/test_no_loss.py); here the world's plan is a draft, so they may refuse earlier
#: (not in review: redirect; not in delivery: 403). Whatever the refusal, nothing changes.
KEEPS_YOUR_WORK = {"plans.edit", "plans.review", "plans.monthly_updates"}


def test_every_post_route_refuses_a_request_without_a_csrf_token(app, world, clients):
    problems, checked = [], 0
    before = snapshot()
    # The JSON API ignores the session cookie (bearer tokens only), so it needs no CSRF
    # token: tests/api/test_auth.py posts to it with a signed-in session and gets 401.
    for rule in sorted(web_rules(app), key=lambda r: r.rule):
        if "POST" not in rule.methods or rule.endpoint in OWN_ACCOUNT:
            continue
        allowed = sorted(POST_ALLOWED[rule.endpoint] - {"anonymous"})
        if not allowed:
            continue
        role = "system_admin" if "system_admin" in allowed else allowed[0]
        path = path_of(rule, world.ids)
        response = clients[role].post(path, data={"reason": "forged", "password": "x"})
        checked += 1
        if rule.endpoint in KEEPS_YOUR_WORK:
            if response.status_code not in (302, 400, 403):
                problems.append(f"POST {path} as {role} without a token: {response.status_code}")
        elif response.status_code != 400:
            problems.append(f"POST {path} as {role} without a token: {response.status_code}")
        elif "nothing was saved" not in response.text:
            problems.append(f"POST {path}: 400 without saying the form was out of date")
    assert checked >= 30
    assert problems == []
    changed = sorted(k for k, v in snapshot().items() if before[k] != v)
    assert changed == []


def test_own_account_routes_refuse_a_request_without_a_csrf_token(app, world, clients):
    before = snapshot()
    for path in ("/auth/logout", "/auth/password", "/auth/settings"):
        response = clients["ceo"].post(path, data={"digest": "daily"})
        assert response.status_code == 400, path
    assert clients["ceo"].get("/").status_code == 200  # still signed in: logout was refused
    changed = sorted(k for k, v in snapshot().items() if before[k] != v)
    assert changed == []
