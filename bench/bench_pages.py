"""Benchmark: the executive home page and the register under 50 concurrent connections,
served by gunicorn with 2 sync workers, vs a minimal Flask + SQLAlchemy page (50 rows)
served the same way in the same run.

What it does (see bench/README.md):

1. Setup, not measured: a fresh migrated database (bench_sweep.fresh_database); 500 units
   of the IQPF framework with their leads and accountable executives, so 1,000 cases (two
   tracks each), about 15 % of them escalated (2a, 2b, 3) and 30 proposals pending; then the
   audit trail filled to 100,000 rows (a valid hash chain, inserted in batches).
2. The floor: ``gunicorn -w 2 bench.minimal_app:app`` on the same database; 50 connections
   request ``/`` as fast as they can for the duration; p50/p95 latency and requests/s.
3. Escalate: ``gunicorn -w 2 wsgi:app`` (development configuration, no scheduler, login
   throttling off); 50 sessions signed in as the Chief Executive and executive directors
   (10 and 40) request the home page ``/``, then the register ``/units/``, the same way.

The load client (``--client``), the same for the floor and the pages in a run:

* ``wrk`` (the default when ``wrk`` is on PATH; Debian package ``wrk``):
  ``wrk -t 2 -c 50 -d S --timeout 30s -s bench/wrk_report.lua``. It is C with one event
  loop per thread and uses a few percent of one core, where 50 Python threads (GIL-bound)
  take a large share of the two cores from the two gunicorn workers and inflate every
  latency. wrk prints no p95, so bench/wrk_report.lua prints p50, p95, requests, errors and
  the duration in ``done()`` as ``bench_pages: KEY VALUE`` lines, parsed here. Signed-in
  pages: the 50 sessions are signed in with the Python client (tests/reliability/servers.py
  ``WebClient``), and their cookies handed to the script, which sends them in rotation, one
  session per request, with the same User-Agent (Flask-Login's "strong" session protection
  checks it). Errors are non-200 replies (a redirect to the sign-in page counts) and socket
  errors; before each run every cookie is checked to get a 200 with the page's heading.
* ``threads``, the fallback: 50 Python threads in this process, each with its own
  ``WebClient`` (one signed-in session each), requesting the page in a loop.

Target (issue 9): p95 < 100 ms and >= 30 % of the minimal page's requests/s. Whichever the
client, it runs on the same machine as the servers; the ratio is fair (both sides are
measured with the same client), the absolute figures are pessimistic, much less so with wrk.
Needs the ``test`` extra (the gunicorn launcher and HTTP client live in
tests/reliability/servers.py).

Run: ``.venv/bin/python -m bench.bench_pages [--db sqlite|postgres] [--client wrk|threads]
[--seconds S] [--quick]`` (wrk takes whole seconds: S is rounded).
"""

from __future__ import annotations

import argparse
import http.client
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.bench_sweep import fresh_database, make_app  # noqa: E402
from tests.reliability.servers import GunicornServer, WebClient  # noqa: E402
from workflow_app.extensions import db  # noqa: E402

PASSWORD = "bench password, not secret"  # noqa: S105 - a throw-away database
CONNECTIONS = 50
CLIENTS = ("wrk", "threads")
# wrk runs one non-blocking epoll event loop per thread, each driving its share of the
# connections (25 each here); one loop can drive thousands, so against two sync workers
# the client is never the bottleneck. Two threads, one per vCPU (wrk's usual setting), so
# that the client is never waiting for the one core a single loop would be tied to; more
# would only add context switches and contend with the two gunicorn workers for the same
# two cores.
WRK_THREADS = 2
WRK_SCRIPT = Path(__file__).resolve().with_name("wrk_report.lua")
WRK_TIMEOUT = "30s"  # wrk's default of 2 s would turn a slow page into socket errors
# The sessions were signed in by WebClient (urllib); Flask-Login's "strong" session
# protection ties a session to the User-Agent, so wrk must send the same one.
USER_AGENT = dict(urllib.request.build_opener().addheaders)["User-agent"]
UNITS = 500  # x 2 tracks = 1,000 cases
AUDIT_ROWS = 100_000
P95_TARGET_MS = 100.0
RATIO_TARGET = 0.30
NOTE = (
    f"target: p95 < {P95_TARGET_MS:.0f} ms and >= {RATIO_TARGET:.0%} of the minimal page's "
    f"requests/s, {CONNECTIONS} connections, gunicorn -w 2 (sync) on 127.0.0.1; the load "
    f"client (wrk -t {WRK_THREADS}, or 50 Python threads) runs on the same machine, the "
    "floor and the pages always with the same client"
)

# What each measured page must show; a redirect to the sign-in page is not the page.
MINIMAL_MARKERS = ("<th>Code</th>",)
PAGES = (
    ("executive home", "/", ("<h1>Chief Executive overview</h1>", "<h1>Executive overview</h1>")),
    ("register", "/units/", ("<h1>Units</h1>",)),
)


def default_client() -> str:
    """wrk when it is installed (it does not compete with the servers for the CPU as 50
    Python threads do), else the Python threads."""
    return "wrk" if shutil.which("wrk") else "threads"


@dataclass
class PageResult:
    db: str
    page: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int
    floor_per_s: float = 0.0
    client: str = "threads"
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.per_s / self.floor_per_s if self.floor_per_s else 1.0

    @property
    def check(self) -> str:
        return "OK" if self.errors == 0 else f"FAILED ({self.errors} errors)"


def seed(url: str, units: int, audit_rows: int, rng: random.Random) -> dict:
    """The organisation and its audit trail; returns the e-mails of the executives."""
    from workflow_app.models.audit import GENESIS_HASH, AuditEvent
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.org import Person, RoleGrant, Unit
    from workflow_app.services.audit import canonical_json, compute_hash
    from workflow_app.services.decisions import raise_escalation
    from workflow_app.services.org import open_cases_for_unit
    from workflow_app.services.passwords import hash_password

    app = make_app(url)
    with app.app_context():
        hashed = hash_password(PASSWORD)

        def person(name: str, email: str, role: str) -> Person:
            p = Person(name=name, email=email, password_hash=hashed)
            p.grants = [RoleGrant(role=role)]
            db.session.add(p)
            return p

        ceo = person("Chief Executive", "ceo@bench.nhs.uk", "ceo")
        execs = [
            person(f"Executive {n}", f"exec{n}@bench.nhs.uk", "executive_director")
            for n in range(4)
        ]
        db.session.flush()
        for n in range(units):
            lead = person(f"Lead {n}", f"lead{n}@bench.nhs.uk", "directorate_lead")
            db.session.flush()
            unit = Unit(
                code=f"B{n:04d}",
                name=f"Bench unit {n}",
                kind="operational_directorate",
                framework="iqpf",
                lead_id=lead.id,
                accountable_executive_id=execs[n % len(execs)].id,
            )
            db.session.add(unit)
            db.session.flush()
            open_cases_for_unit(unit)
        db.session.commit()
        cases = db.session.scalars(sa.select(EscalationCase).order_by(EscalationCase.id)).all()
        now = datetime.now(UTC)
        for case in rng.sample(cases, len(cases) * 15 // 100):
            case.level = {"performance": rng.choice(["2a", "2a", "3"]), "finance": "2b"}[case.track]
            case.level_since = now - timedelta(days=rng.randint(10, 400))
        db.session.commit()
        at_one = [c for c in cases if c.level == "1" and c.track == "performance"]
        for case in rng.sample(at_one, 30):
            raise_escalation(
                execs[0], case, to_level="2a", reason="Below target", evidence_note="RTT"
            )
        db.session.commit()

        # The rest of the audit trail, as a valid chain on top of what the setup wrote.
        have = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        head = db.session.scalar(sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        head = head or GENESIS_HASH
        started = now - timedelta(days=365)
        batch = []
        for n in range(max(0, audit_rows - have)):
            event = AuditEvent(
                occurred_at=started + timedelta(seconds=300 * n),
                actor_id=execs[n % len(execs)].id,
                action="unit.updated",
                object_type="unit",
                object_id=str(n % units + 1),
                summary=f"Bench history event {n}",
                details=canonical_json({"n": n}),
                prev_hash=head,
            )
            event.hash = head = compute_hash(event)
            batch.append(
                {
                    c: getattr(event, c)
                    for c in (
                        "occurred_at",
                        "actor_id",
                        "action",
                        "object_type",
                        "object_id",
                        "summary",
                        "details",
                        "prev_hash",
                        "hash",
                    )
                }
            )
            if len(batch) == 5000:
                db.session.execute(sa.insert(AuditEvent), batch)
                batch = []
        if batch:
            db.session.execute(sa.insert(AuditEvent), batch)
        db.session.commit()
        emails = [ceo.email] + [e.email for e in execs]
        db.engine.dispose()
    return {"emails": emails}


def hammer(clients: list[WebClient], path: str, seconds: float) -> tuple[list[float], int, float]:
    """Every client requests ``path`` in a loop for ``seconds``: (latencies, errors, elapsed)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = threading.Event()
    barrier = threading.Barrier(len(clients) + 1)

    def run(client: WebClient) -> None:
        client.get(path)  # warm: the worker's first render, the client's connection
        barrier.wait()
        mine, bad = [], 0
        while not stop.is_set():
            started = time.perf_counter()
            reply = client.get(path)
            mine.append(time.perf_counter() - started)
            bad += reply.status != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.perf_counter() - started


@dataclass
class Measured:
    """What one load client measured on one page."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int


def _from_latencies(latencies: list[float], errors: int, elapsed: float) -> Measured:
    ordered = sorted(latencies) or [0.0]
    return Measured(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p95_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
        errors=errors,
    )


def _result(kind: str, page: str, client: str, measured: Measured, floor=0.0) -> PageResult:
    return PageResult(
        db=kind,
        page=page,
        requests=measured.requests,
        seconds=measured.seconds,
        p50_ms=measured.p50_ms,
        p95_ms=measured.p95_ms,
        errors=measured.errors,
        floor_per_s=floor,
        client=client,
    )


def describe_client(client: str) -> str:
    """The load client, for the output: wrk's version and options, or the threads."""
    if client == "threads":
        return f"threads ({CONNECTIONS} Python threads, urllib, one connection each)"
    version = subprocess.run(  # noqa: S603 - fixed arguments
        ["wrk", "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    name = version[0].split(" [")[0] if version else "wrk"
    return f"{name} (-t {WRK_THREADS} -c {CONNECTIONS}, {WRK_SCRIPT.name})"


def cookie_header(client: WebClient) -> str:
    """A signed-in client's cookies as a Cookie header value."""
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies)


def _check(status: int, text: str, location: str, path: str, markers, who: str) -> None:
    if status != 200 or not any(m in text for m in markers):
        raise RuntimeError(
            f"GET {path} as {who}: HTTP {status} {location}, not the page (expected one of "
            f"{markers}); a session that is not signed in would measure the sign-in redirect"
        )


def check_with_cookies(base_url: str, path: str, markers, cookies: list[str]) -> None:
    """Before a wrk run: every session (exactly the headers wrk sends) gets the page itself.
    Also warms the workers up, as the threads' first requests do."""
    port = int(base_url.rsplit(":", 1)[1])
    for n, cookie in enumerate(cookies or [""]):
        headers = {"User-Agent": USER_AGENT}
        if cookie:
            headers["Cookie"] = cookie
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", path, headers=headers)
            reply = conn.getresponse()
            text = reply.read().decode("utf-8", "replace")
        finally:
            conn.close()
        location = reply.getheader("Location") or ""
        _check(reply.status, text, location, path, markers, f"session {n}")


def wrk_load(base_url: str, path: str, seconds: float, cookies: list[str]) -> Measured:
    """``wrk -t 2 -c 50`` on ``path`` for ``seconds`` (whole seconds: wrk takes no
    fractions); bench/wrk_report.lua sends the cookies in rotation, one session per
    request, and prints the figures this parses. Errors: non-200 replies and socket errors
    (connect, read, write, timeout)."""
    command = [
        "wrk",
        "-t",
        str(WRK_THREADS),
        "-c",
        str(CONNECTIONS),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        WRK_TIMEOUT,
        "-H",
        f"User-Agent: {USER_AGENT}",
        "-s",
        str(WRK_SCRIPT),
        base_url + path,
    ]
    if cookies:
        command += ["--", *cookies]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    report = {}
    for line in done.stdout.splitlines():
        if line.startswith("bench_pages: "):
            key, _, value = line.removeprefix("bench_pages: ").partition(" ")
            report[key] = value
    wanted = ("requests", "duration_s", "p50_ms", "p95_ms", "errors")
    if done.returncode != 0 or any(k not in report for k in wanted):
        raise RuntimeError(
            f"wrk failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    if int(report["errors"]):
        print(
            f"  wrk {path}: {report.get('non_200')} non-200, socket errors "
            f"{report.get('socket_detail')}",
            file=sys.stderr,
            flush=True,
        )
    return Measured(
        requests=int(report["requests"]),
        seconds=float(report["duration_s"]),
        p50_ms=float(report["p50_ms"]),
        p95_ms=float(report["p95_ms"]),
        errors=int(report["errors"]),
    )


def measure(
    client: str,
    base_url: str,
    path: str,
    seconds: float,
    markers,
    sessions: list[WebClient] | None = None,
) -> Measured:
    """Check that every session gets the page, then load ``path`` with ``CONNECTIONS``
    connections for ``seconds`` with the chosen client. ``sessions``: signed-in clients
    (None: anonymous, the minimal page)."""
    if client == "wrk":
        cookies = [cookie_header(s) for s in sessions] if sessions else []
        check_with_cookies(base_url, path, markers, cookies)
        before = _children_cpu()
        measured = wrk_load(base_url, path, seconds, cookies)
        client_cpu = _children_cpu() - before  # wrk only: gunicorn is reaped later
    else:
        clients = sessions or [WebClient(base_url) for _ in range(CONNECTIONS)]
        for n, web in enumerate(clients):
            reply = web.get(path)
            _check(reply.status, reply.text, reply.location, path, markers, f"client {n}")
        before = time.process_time()
        measured = _from_latencies(*hammer(clients, path, seconds))
        client_cpu = time.process_time() - before  # this process: the client threads
    print(
        f"  {client} {path}: {measured.requests:,} requests in {measured.seconds:.1f} s; the "
        f"load client used {client_cpu:.1f} s of CPU ({client_cpu / measured.seconds:.0%} of "
        "one core)",
        file=sys.stderr,
        flush=True,
    )
    return measured


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    kind: str,
    seconds: float = 20.0,
    units: int = UNITS,
    audit_rows: int = AUDIT_ROWS,
    client: str | None = None,
):
    """Seed, serve and measure with ``client`` (``wrk`` or ``threads``; default: wrk when it
    is on PATH); returns the minimal page's, the home page's and the register's results."""
    client = client or default_client()
    if client not in CLIENTS:
        raise ValueError(f"unknown load client {client!r}; one of {CLIENTS}")
    if client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --client threads")
    rng = random.Random(1)
    logs = Path(tempfile.mkdtemp(prefix="escalate-bench-pages-"))
    with fresh_database(kind) as url:
        started = time.perf_counter()
        world = seed(url, units, audit_rows, rng)
        setup_s = time.perf_counter() - started
        print(f"[{kind}] setup {setup_s:.0f} s", file=sys.stderr, flush=True)
        print(f"[{kind}] load client: {describe_client(client)}", file=sys.stderr, flush=True)
        results = []
        floor = GunicornServer(
            url, workers=2, log_dir=logs, app_module="bench.minimal_app:app", ready_path="/"
        )
        try:
            floor.start()
            measured = measure(client, floor.base_url, "/", seconds, MINIMAL_MARKERS)
            minimal = _result(kind, "minimal 50 rows", client, measured)
        finally:
            floor.stop()
        results.append(minimal)
        server = GunicornServer(url, workers=2, log_dir=logs)
        try:
            server.start()
            emails = world["emails"]
            sessions = [
                WebClient(server.base_url).sign_in(emails[n % len(emails)], PASSWORD)
                for n in range(CONNECTIONS)
            ]
            for page, path, markers in PAGES:
                measured = measure(client, server.base_url, path, seconds, markers, sessions)
                results.append(_result(kind, page, client, measured, floor=minimal.per_s))
        finally:
            server.stop()
    return results


def format_table(results: list[PageResult]) -> str:
    header = [
        "client",
        "db",
        "page",
        "check",
        "requests",
        "p50 ms",
        "p95 ms",
        "req/s",
        "ratio",
        "target",
    ]
    rows = [header]
    for r in results:
        floor = r.floor_per_s == 0.0
        met = r.p95_ms < P95_TARGET_MS and r.ratio >= RATIO_TARGET
        rows.append(
            [
                r.client,
                r.db,
                r.page,
                r.check.split(" ")[0],
                f"{r.requests:,}",
                f"{r.p50_ms:.0f}",
                f"{r.p95_ms:.0f}",
                f"{r.per_s:,.1f}",
                "(floor)" if floor else f"{r.ratio:.1%}",
                "" if floor else ("met" if met else "not met"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0, help="per page (default 20)")
    parser.add_argument(
        "--quick", action="store_true", help="5 s per page, 10,000 audit rows, 100 units"
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default=default_client(),
        help="load client: wrk (default when on PATH) or 50 Python threads (the fallback)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        results = run(args.db, 5.0, units=100, audit_rows=10_000, client=args.client)
    else:
        results = run(args.db, args.seconds, client=args.client)
    print(f"load client: {describe_client(args.client)}")
    print(format_table(results))
    print("  " + NOTE)
    return 0 if all(r.check == "OK" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
