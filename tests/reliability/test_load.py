"""Load (RELIABILITY-ANCHORS check 24): 50 concurrent users over gunicorn with several
workers on PostgreSQL, for a fixed time, mixing reads (home, register, unit pages, the
decisions list) and writes (recovery plan draft saves, decisions, data uploads).

Pass: no 5xx at all, no acknowledged write lost (every 302 is in the database, and nothing
is in the database that was not acknowledged), the consistency query clean. Latencies are
printed (p50/p95 per kind of request), never asserted. The load client is a thread per
user with its own cookies (``tests/reliability/servers.WebClient``): locust would bring
gevent and its own Flask pin for what fifty threads do here.

CI runs 20 seconds; the full profile (``ESCALATE_TEST_PROFILE=full``) ten minutes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from tests.profile import SEED, scaled
from tests.reliability.conftest import (
    approve_form,
    consistency_problems,
    decision_state,
    fully_approved,
)
from tests.reliability.servers import WebClient
from workflow_app.extensions import db

USERS = 50
PLANS = 4
PENDING = 16


class _FormFields(HTMLParser):
    """The values a browser would send from the first form posting to ``action``."""

    def __init__(self, action: str):
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._selected = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("action") == self.action and not self.fields:
            self.inside = True
        if not self.inside or not a.get("name") and tag not in ("option",):
            return
        if tag == "input" and a.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "input" and "checked" in a:
            self.fields.append((a["name"], a.get("value") or "on"))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select, self._select_first, self._selected = a["name"], None, False
        elif tag == "option" and self._select:
            if self._select_first is None:
                self._select_first = a.get("value", "")
            if "selected" in a:
                self.fields.append((self._select, a.get("value", "")))
                self._selected = True

    def handle_data(self, data):
        if self._textarea is not None:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            if not self._selected and self._select_first is not None:
                self.fields.append((self._select, self._select_first))
            self._select = None
        elif tag == "form" and self.inside:
            self.inside = False


def form_fields(html: str, action: str) -> dict[str, str]:
    parser = _FormFields(action)
    parser.feed(html)
    return dict(parser.fields)


def build_load_world(create_person, create_unit) -> dict:
    """Units with leads; PLANS of them at 2a with a draft plan; PENDING pending decisions."""
    from tests.conftest import PASSWORD
    from workflow_app.models.cases import EscalationCase
    from workflow_app.services.decisions import decide_proposal, raise_escalation
    from workflow_app.services.plans import start_plan

    execs = [create_person("executive_director", name=f"Exec {n}") for n in range(3)]
    team = [create_person("performance_team", name=f"Analyst {n}") for n in range(2)]
    ceo = create_person("ceo", name="Chief Executive")
    units, plans, pending = [], {}, []
    for n in range(PLANS + PENDING):
        lead = create_person("directorate_lead", name=f"Lead {n}")
        unit = create_unit(
            code=f"L{n:03d}", name=f"Load unit {n}", lead=lead, accountable_executive_id=execs[0].id
        )
        units.append((unit.id, lead))
        case = db.session.scalar(
            sa.select(EscalationCase).where(
                EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
            )
        )
        decision = raise_escalation(
            execs[1], case, to_level="2a", reason="Below target", evidence_note="RTT18 at 76%"
        )
        db.session.commit()
        if n < PLANS:
            decide_proposal(
                execs[0],
                decision,
                outcome="approve",
                reason="Agreed",
                password=PASSWORD,
                meeting_reference="Executive Team, item 1",
            )
            db.session.commit()
            plan = start_plan(lead, case)
            db.session.commit()
            plans[plan.id] = lead
        else:
            pending.append(decision.id)
    return {
        "execs": execs,
        "team": team,
        "ceo": ceo,
        "units": units,
        "plans": plans,
        "pending": pending,
    }


class Recorder:
    """Every request's kind, status and latency, and the writes the app acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[int, int] = defaultdict(int)
        self.server_errors: list[tuple[str, int, str]] = []
        self.approved: list[int] = []
        self.plan_saves: dict[int, list[str]] = defaultdict(list)
        self.uploads = 0

    def timed(self, kind: str, call):
        started = time.monotonic()
        reply = call()
        elapsed = time.monotonic() - started
        with self.lock:
            self.samples[kind].append(elapsed)
            self.statuses[reply.status] += 1
            if reply.status >= 500:
                self.server_errors.append((kind, reply.status, reply.text[-300:]))
        return reply

    def report(self) -> str:
        lines = []
        for kind, values in sorted(self.samples.items()):
            values = sorted(values)
            p50 = values[len(values) // 2]
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            lines.append(
                f"  {kind:<14} n={len(values):>5}  p50 {p50 * 1000:7.0f} ms  "
                f"p95 {p95 * 1000:7.0f} ms"
            )
        return "\n".join(lines)


def _reader(client: WebClient, units: list[int], rec: Recorder, rng, stop, decisions: bool):
    pages = ["/", "/units/"] + (["/decisions/"] if decisions else [])
    while not stop.is_set():
        path = rng.choice(pages + [f"/units/{rng.choice(units)}"])
        kind = "unit page" if path.startswith("/units/") and path != "/units/" else path
        rec.timed(kind, lambda p=path: client.get(p))


def _decider(client: WebClient, pool: list[int], pool_lock, rec: Recorder, rng, stop):
    token = client.form_token("/")
    while not stop.is_set():
        with pool_lock:
            decision = pool.pop(rng.randrange(len(pool))) if pool else None
        if decision is None:
            rec.timed("/decisions/", lambda: client.get("/decisions/"))
            continue
        reply = rec.timed(
            "sign decision",
            lambda d=decision: client.post(f"/decisions/{d}/sign", approve_form(token)),
        )
        if reply.status == 302:
            with rec.lock:
                rec.approved.append(decision)


def _plan_writer(client: WebClient, plan_id: int, rec: Recorder, stop, name: str):
    n = 0
    while not stop.is_set():
        page = rec.timed("plan edit", lambda: client.get(f"/plans/{plan_id}/edit"))
        fields = form_fields(page.text, f"/plans/{plan_id}/edit")
        n += 1
        summary = f"Recovery summary, save {n} by {name}"
        fields.update(summary=summary, do="save")
        reply = rec.timed("plan save", lambda f=fields: client.post(f"/plans/{plan_id}/edit", f))
        if reply.status == 302:
            with rec.lock:
                rec.plan_saves[plan_id].append(summary)


def _uploader(client: WebClient, rec: Recorder, stop):
    template = client.get("/data/template/finance.csv")
    assert template.status == 200
    while not stop.is_set():
        token = client.form_token("/data/upload")
        reply = rec.timed(
            "upload",
            lambda t=token: client.post(
                "/data/upload",
                {"csrf_token": t},
                files={"file": ("finance.csv", template.text.encode())},
            ),
        )
        if reply.status == 302:
            with rec.lock:
                rec.uploads += 1


def test_fifty_users_mixing_reads_and_writes_lose_nothing(
    db_kind, create_person, create_unit, serve
):
    if db_kind != "postgres":
        pytest.skip("the load check runs gunicorn with several workers on PostgreSQL")
    from workflow_app.models.imports import ImportBatch
    from workflow_app.models.plans import RecoveryPlan

    world = build_load_world(create_person, create_unit)
    batches_before = db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch))
    locks_before = {
        plan.id: plan.lock_version for plan in db.session.scalars(sa.select(RecoveryPlan))
    }
    db.session.commit()
    server = serve(workers=4)
    rng = random.Random(SEED)
    rec, stop, pool_lock = Recorder(), threading.Event(), threading.Lock()
    pool = list(world["pending"])
    unit_ids = [unit_id for unit_id, _ in world["units"]]

    # Who is who: plan writers, uploaders, deciders, then readers (half executives and the
    # performance team, half unit leads reading their own unit).
    roles: list[tuple[str, object, object]] = [
        ("plan", lead, plan_id) for plan_id, lead in world["plans"].items()
    ]
    roles += [("upload", analyst, None) for analyst in world["team"]]
    roles += [("decide", world["execs"][n % len(world["execs"])], None) for n in range(6)]
    while len(roles) < USERS:
        n = len(roles)
        if n % 2:
            roles.append(("read", [world["ceo"], *world["execs"], *world["team"]][n % 6], None))
        else:
            unit_id, lead = world["units"][n % len(world["units"])]
            roles.append(("read", lead, unit_id))
    emails = [person.email for _, person, _ in roles]  # read here: the session is not shared
    with ThreadPoolExecutor(8) as signing:
        clients = list(signing.map(lambda email: WebClient(server.base_url).sign_in(email), emails))
    threads = []
    for (kind, person, extra), client in zip(roles, clients, strict=True):
        if kind == "plan":
            threads.append((_plan_writer, (client, extra, rec, stop, person.name)))
        elif kind == "upload":
            threads.append((_uploader, (client, rec, stop)))
        elif kind == "decide":
            chooser = random.Random(rng.random())
            threads.append((_decider, (client, pool, pool_lock, rec, chooser, stop)))
        else:
            # A lead reads their own unit; another unit's page would answer 404 by design.
            everyone = person.sees_whole_organisation
            visible = unit_ids if everyone else [extra]
            chooser = random.Random(rng.random())
            threads.append((_reader, (client, visible, rec, chooser, stop, everyone)))
    running = [threading.Thread(target=target, args=args) for target, args in threads]
    duration = scaled(20, 600)
    started = time.monotonic()
    for thread in running:
        thread.start()
    time.sleep(duration)
    stop.set()
    for thread in running:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    total = sum(rec.statuses.values())
    print(
        f"\nload: {USERS} users, {elapsed:.0f} s, {total} requests ({total / elapsed:.1f}/s), "
        f"statuses {dict(rec.statuses)}\n{rec.report()}"
    )

    assert rec.server_errors == []
    assert set(rec.statuses) <= {200, 302}, dict(rec.statuses)
    assert not any(thread.is_alive() for thread in running)
    # Every acknowledged decision happened in full, and no other decision did.
    for decision in rec.approved:
        assert fully_approved(decision_state(decision)), decision
    approved_now = {d for d in world["pending"] if decision_state(d)["status"] == "approved"}
    assert approved_now == set(rec.approved)
    # Every acknowledged plan save is there: one version step each, the last one's text.
    db.session.expire_all()
    for plan_id, saves in rec.plan_saves.items():
        plan = db.session.get(RecoveryPlan, plan_id)
        assert plan.lock_version - locks_before[plan_id] == len(saves)
        assert plan.summary == saves[-1]
    # Every acknowledged upload is a stored batch, and nothing more.
    batches = db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch))
    assert batches - batches_before == rec.uploads
    assert rec.approved and rec.uploads and all(rec.plan_saves.values())
    assert consistency_problems() == []
