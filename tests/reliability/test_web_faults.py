"""The web app under faults, served by gunicorn on loopback (RELIABILITY-ANCHORS checks 8,
9 and 10): a database connection cut mid-request, a worker killed mid-decision, and
approvals racing. Each ends with the consistency query."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.profile import SEED, scaled
from tests.reliability.conftest import (
    UNTOUCHED,
    approve_form,
    consistency_problems,
    decision_state,
    fully_approved,
    signed_in,
)
from tests.reliability.servers import Reply, WebClient


def _race(posts: list) -> list[Reply]:
    """Run the callables at the same moment (a barrier) and return their replies."""
    barrier = threading.Barrier(len(posts))

    def go(post):
        barrier.wait()
        return post()

    with ThreadPoolExecutor(len(posts)) as pool:
        return list(pool.map(go, posts))


# --- check 10: double approval -------------------------------------------------------------


def test_identical_posts_and_racing_approvers_give_exactly_one_transition(decision_board, serve):
    board = decision_board(2)
    first, second = board.decision_ids
    server = serve(workers=4)
    me = signed_in(server, board.people.exec1)
    token = me.form_token(f"/decisions/{first}")

    # 20 identical POSTs from one approver's session, as from a double-clicking browser.
    replies = _race([lambda: me.post(f"/decisions/{first}/sign", approve_form(token))] * 20)
    statuses = sorted(r.status for r in replies)
    assert statuses == [302] + [409] * 19, statuses
    texts = {_main_text(r) for r in replies if r.status == 409}
    assert all("already" in t or "at the same time" in t for t in texts), texts
    assert fully_approved(decision_state(first))

    # Two executives, each entitled, approving the same decision at the same moment.
    other = signed_in(server, board.people.exec2)
    tokens = [me.form_token(f"/decisions/{second}"), other.form_token(f"/decisions/{second}")]
    replies = _race(
        [
            lambda: me.post(f"/decisions/{second}/sign", approve_form(tokens[0])),
            lambda: other.post(f"/decisions/{second}/sign", approve_form(tokens[1])),
        ]
    )
    assert sorted(r.status for r in replies) == [302, 409]
    loser = next(r for r in replies if r.status == 409)
    assert "already approved by" in loser.text
    assert fully_approved(decision_state(second))
    assert consistency_problems() == []


def test_a_stale_sign_form_is_refused_and_writes_nothing(decision_board, serve):
    board = decision_board(1)
    (decision,) = board.decision_ids
    server = serve(workers=2)
    slow = signed_in(server, board.people.exec2)
    stale_token = slow.form_token(f"/decisions/{decision}")  # the form, opened early
    quick = signed_in(server, board.people.exec1)
    quick_token = quick.form_token(f"/decisions/{decision}")
    rejection = dict(approve_form(quick_token, "Not yet: one more month"), outcome="reject")
    assert quick.post(f"/decisions/{decision}/sign", rejection).status == 302
    before = decision_state(decision)

    reply = slow.post(f"/decisions/{decision}/sign", approve_form(stale_token))
    assert reply.status == 409
    assert "already rejected by Eve Exec" in reply.text
    assert decision_state(decision) == before
    assert consistency_problems() == []


# --- check 9: a worker killed mid-decision -------------------------------------------------


def test_a_worker_killed_during_a_decision_leaves_all_or_nothing(decision_board, serve):
    rounds = scaled(4, 200)
    board = decision_board(rounds + 1)
    server = serve(workers=1)  # --preload: a replacement worker is forked ready at once
    rng = random.Random(SEED)
    # One decision signed undisturbed by a fresh worker tells how long a signing takes; the
    # kills then land anywhere from before the request is read to after the reply was sent.
    calibration, *decisions = board.decision_ids
    client = signed_in(server, board.people.exec1)
    token = client.form_token(f"/decisions/{calibration}")
    os.kill(server.worker_pids()[0], signal.SIGKILL)
    server.wait_ready()
    started = time.monotonic()
    assert client.post(f"/decisions/{calibration}/sign", approve_form(token)).status == 302
    signing = time.monotonic() - started
    outcomes = []
    for decision in decisions:
        client = signed_in(server, board.people.exec1)
        token = client.form_token(f"/decisions/{decision}")
        (worker,) = server.worker_pids()
        delay = rng.uniform(0, 1.5 * signing)
        replies: list[Reply] = []
        post = threading.Thread(
            target=lambda c=client, d=decision, t=token, out=replies: out.append(
                _post_or_dropped(c, f"/decisions/{d}/sign", approve_form(t))
            )
        )
        post.start()
        time.sleep(delay)
        os.kill(worker, signal.SIGKILL)
        post.join(timeout=60)
        state = decision_state(decision)
        assert state == UNTOUCHED or fully_approved(state), (delay, state)
        if replies and replies[0].status == 302:  # acknowledged: it must have happened
            assert fully_approved(state), (delay, state)
        outcomes.append("applied" if fully_approved(state) else "none")
        server.wait_ready()  # the master starts a new worker; no restart by hand
    print(
        f"worker killed mid-decision {rounds} times (signing takes {signing:.2f}s): "
        f"{outcomes.count('applied')} applied, {outcomes.count('none')} not at all"
    )
    assert consistency_problems() == []


def _post_or_dropped(client: WebClient, path: str, data: dict) -> Reply:
    """The reply, or status 0 when the connection died with the worker."""
    try:
        return client.post(path, data)
    except OSError:
        return Reply(0, "")


# --- check 8: the database connection cut --------------------------------------------------


def test_requests_fail_cleanly_while_the_database_is_cut_off_and_recover_after(
    decision_board, serve, pg_proxy
):
    proxy, through_proxy = pg_proxy
    board = decision_board(scaled(4, 30))
    server = serve(workers=2, url=through_proxy)
    client = signed_in(server, board.people.exec1)
    token = client.form_token("/")
    assert client.get("/units/").status == 200

    proxy.cut()
    cut_replies = [client.get("/units/")]
    for decision in board.decision_ids[: len(board.decision_ids) // 2]:
        cut_replies.append(client.post(f"/decisions/{decision}/sign", approve_form(token)))
    time.sleep(scaled(2, 10) - 1)
    cut_replies.append(client.get("/"))
    assert {r.status for r in cut_replies} == {503}, [r.status for r in cut_replies]
    assert all("Nothing has been changed" in r.text for r in cut_replies)
    assert "cannot reach its database" in cut_replies[0].text

    proxy.restore()
    after = [client.get("/units/"), client.get("/")]
    for decision in board.decision_ids:
        after.append(client.post(f"/decisions/{decision}/sign", approve_form(token)))
    deadline = time.monotonic() + scaled(2, 30)
    while time.monotonic() < deadline:
        after.append(client.get("/units/"))
    assert {r.status for r in after} <= {200, 302}, sorted({r.status for r in after})
    for decision in board.decision_ids:
        assert fully_approved(decision_state(decision))
    assert consistency_problems() == []


def _main_text(reply: Reply) -> str:
    """The sentences of the page's main content, for assertion messages."""
    import re

    main = reply.text.split('id="maincontent"', 1)[-1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())
