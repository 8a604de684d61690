"""Benchmark: audited decisions per second vs the ORM floor (SQLite or PostgreSQL).

What it does (see bench/README.md):

1. Setup, not measured: a fresh migrated database; N units of the IQPF framework, each
   with its lead and its level-1 cases (``open_cases_for_unit``); one executive director
   (accountable executive of every unit) who signs; and for each unit a proposal from
   Level 1 to Level 2a raised through ``raise_escalation``, committed.
2. Measured: for each proposal, one request's worth of work: ``session.get`` the signer and
   the decision, ``decide_proposal(... outcome="approve", password=...)`` and commit, then
   ``session.remove()``. Each decision re-authenticates the signer (argon2 verify), signs,
   moves the decision from pending, applies the transition (versioned UPDATE of the case,
   level history), writes the audit rows, issues the 2a letter, creates the "Recovery plan
   due" deadline (and plans its reminders), re-plans the cadence and queues the e-mails,
   all in one transaction.
3. The floor, in the same run on the same database: for each case, ``session.get`` the
   case, a versioned UPDATE (``level_since``; the version column moves), one audit INSERT
   (an ``AuditEvent`` with its hash, without the chain-head read), one commit. It runs once
   before and once after the decisions; the figure is the mean of the two.

Passwords are hashed with the cheap argon2 parameters of ``TestConfig`` (time_cost 1,
memory 1 MiB), as the tests do; the cost of one verify with those and with the library's
defaults (production) is printed alongside.

Run: ``.venv/bin/python -m bench.bench_decisions [--db sqlite|postgres] [-n N] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import time_machine  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from flask import Flask  # noqa: E402

from bench.bench_sweep import fresh_database, make_app  # noqa: E402
from workflow_app.clock import utcnow  # noqa: E402
from workflow_app.extensions import db  # noqa: E402
from workflow_app.models.audit import AuditEvent  # noqa: E402
from workflow_app.models.cases import Decision, EscalationCase  # noqa: E402
from workflow_app.models.measures import Measure  # noqa: E402
from workflow_app.models.org import Domain, Person, RoleGrant, Unit  # noqa: E402
from workflow_app.models.outbox import OutboxMessage  # noqa: E402
from workflow_app.services.decisions import decide_proposal, raise_escalation  # noqa: E402
from workflow_app.services.org import open_cases_for_unit  # noqa: E402
from workflow_app.services.passwords import hash_password  # noqa: E402

PASSWORD = "correct horse battery staple"
#: Monday 23 November 2026, 10:00 UTC, as the tests' clock; time ticks from there.
CLOCK = "2026-11-23 10:00:00+00:00"
MEETING = "Executive Team, 23 November 2026, item 4"


@dataclass
class World:
    executive_id: int
    reviewer_id: int
    unit_ids: list[int]
    lead_ids: list[int]
    case_ids: list[int]
    measure_ids: list[int]
    domain_ids: dict[str, int]


@dataclass
class DecisionResult:
    db: str
    n: int
    setup_s: float
    decisions_s: float
    per_s: float
    floor_per_s: float
    floor_runs: tuple[float, float]
    ratio: float
    check: str
    statements: float
    floor_statements: float
    verify_cheap_ms: float
    verify_default_ms: float


def build_world(app: Flask, n: int) -> World:
    """N IQPF units (lead, level-1 cases, one RTT18 measure each), an executive, a reviewer."""
    with app.app_context():
        hashed = hash_password(PASSWORD)

        def person(name: str, role: str) -> Person:
            p = Person(
                name=name,
                email=f"{name.lower().replace(' ', '.')}@example.nhs.uk",
                password_hash=hashed,
            )
            p.grants = [RoleGrant(role=role)]
            db.session.add(p)
            return p

        executive = person("Eve Exec", "executive_director")
        reviewer = person("Pat Performance", "performance_team")
        leads = [person(f"Lead {i}", "directorate_lead") for i in range(n)]
        domains = {
            "access": Domain(code="access_activity", name="Access & Activity"),
            "quality": Domain(code="quality_safety_experience", name="Quality & Safety"),
        }
        db.session.add_all(domains.values())
        db.session.flush()
        units = []
        for i, lead in enumerate(leads):
            unit = Unit(
                code=f"U{i:04d}",
                name=f"Unit {i}",
                kind="operational_directorate",
                framework="iqpf",
                lead_id=lead.id,
                accountable_executive_id=executive.id,
                budget_holder_id=lead.id,
            )
            db.session.add(unit)
            db.session.flush()
            open_cases_for_unit(unit)
            units.append(unit)
        measures = [
            Measure(
                unit_id=unit.id,
                domain_id=domains["access"].id,
                code="RTT18",
                name="Referral to treatment in 18 weeks",
                kind="national_target",
                target=Decimal(92),
                direction="higher_is_better",
                unit_of_measure="percent",
            )
            for unit in units
        ]
        db.session.add_all(measures)
        db.session.commit()
        cases = {
            c.unit_id: c.id
            for c in db.session.scalars(
                sa.select(EscalationCase).where(EscalationCase.track == "performance")
            )
        }
        world = World(
            executive_id=executive.id,
            reviewer_id=reviewer.id,
            unit_ids=[u.id for u in units],
            lead_ids=[p.id for p in leads],
            case_ids=[cases[u.id] for u in units],
            measure_ids=[m.id for m in measures],
            domain_ids={k: d.id for k, d in domains.items()},
        )
        db.session.remove()
    return world


def propose(executive: Person, case: EscalationCase) -> Decision:
    return raise_escalation(
        executive,
        case,
        to_level="2a",
        reason="Referral to treatment below target for three months",
        evidence_note="RTT18 at 76%, 77%, 76% in Aug-Oct 2026",
    )


def decide(executive: Person, decision: Decision) -> Decision:
    return decide_proposal(
        executive,
        decision,
        outcome="approve",
        reason="Sustained deterioration",
        password=PASSWORD,
        meeting_reference=MEETING,
    )


def floor(app: Flask, case_ids: list[int], tag: str) -> float:
    """session.get + versioned UPDATE of the case + audit INSERT, one commit each; per s."""
    with app.app_context():
        session = db.session
        start = time.perf_counter()
        for case_id in case_ids:
            case = session.get(EscalationCase, case_id)
            case.level_since = utcnow()  # the version column moves: a versioned UPDATE
            digest = hashlib.sha256(f"{tag}:{case_id}".encode()).hexdigest()
            session.add(
                AuditEvent(
                    occurred_at=utcnow(),
                    actor_id=None,
                    action="bench.floor",
                    object_type="case",
                    object_id=str(case_id),
                    summary="floor",
                    details="{}",
                    prev_hash="p" + digest[1:],
                    hash=digest,
                )
            )
            session.commit()
            session.remove()
        elapsed = time.perf_counter() - start
    return len(case_ids) / elapsed


class StatementCounter:
    """Counts the SQL statements an engine sends while installed."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.count = 0

    def _count(self, *_args) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._count)


def verify_ms(hasher: PasswordHasher, rounds: int = 5) -> float:
    hashed = hasher.hash(PASSWORD)
    start = time.perf_counter()
    for _ in range(rounds):
        hasher.verify(hashed, PASSWORD)
    return (time.perf_counter() - start) / rounds * 1000


def run(kind: str = "sqlite", n: int = 300, profile: bool = False):
    """Build, floor, decide N proposals, floor again; a :class:`DecisionResult` (+ profile)."""
    with fresh_database(kind) as url, time_machine.travel(CLOCK, tick=True):
        app = make_app(url)
        t0 = time.perf_counter()
        world = build_world(app, n)
        with app.app_context():
            executive = db.session.get(Person, world.executive_id)
            decision_ids = []
            for case_id in world.case_ids:
                decision_ids.append(propose(executive, db.session.get(EscalationCase, case_id)).id)
                db.session.commit()
            outbox_before = db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)))
            db.session.remove()
        setup_s = time.perf_counter() - t0
        with app.app_context():
            engine = db.engine
        with StatementCounter(engine) as floor_counter:
            floor_before = floor(app, world.case_ids, "before")
        counter = StatementCounter(engine)
        profiler = cProfile.Profile() if profile else None
        with app.app_context():
            session = db.session
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            counter.__enter__()
            for decision_id in decision_ids:
                executive = session.get(Person, world.executive_id)
                decide(executive, session.get(Decision, decision_id))
                session.commit()
                session.remove()
            counter.__exit__()
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - start
            approved = session.scalar(
                sa.select(sa.func.count(Decision.id)).where(Decision.status == "approved")
            )
            at_2a = session.scalar(
                sa.select(sa.func.count(EscalationCase.id)).where(EscalationCase.level == "2a")
            )
            outbox = session.scalar(sa.select(sa.func.count(OutboxMessage.id))) - outbox_before
            session.remove()
        floor_after = floor(app, world.case_ids, "after")
        with app.app_context():
            cheap = verify_ms(
                PasswordHasher(
                    time_cost=app.config["ARGON2_TIME_COST"],
                    memory_cost=app.config["ARGON2_MEMORY_COST"],
                )
            )
            db.engine.dispose()
    default = verify_ms(PasswordHasher(), rounds=3)
    floor_per_s = (floor_before + floor_after) / 2
    per_s = n / elapsed
    ok = approved == n and at_2a == n and outbox >= n
    profile_text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        profile_text = out.getvalue()
    result = DecisionResult(
        db=kind,
        n=n,
        setup_s=setup_s,
        decisions_s=elapsed,
        per_s=per_s,
        floor_per_s=floor_per_s,
        floor_runs=(floor_before, floor_after),
        ratio=per_s / floor_per_s,
        statements=counter.count / n,
        floor_statements=floor_counter.count / n,
        check="OK" if ok else f"MISMATCH (approved {approved}, at 2a {at_2a}, outbox {outbox})",
        verify_cheap_ms=cheap,
        verify_default_ms=default,
    )
    return result, profile_text


TARGET = 0.40
NOTE = (
    "decision = get signer + decision, decide_proposal(approve 1 -> 2a: signature, audit, "
    "level change, letter,\n  deadline + reminders, cadence, outbox), commit; floor = "
    "session.get + versioned UPDATE of the case\n  + audit INSERT, commit (mean of a run "
    "before and after). Cheap argon2 (TestConfig) for re-authentication."
)


def format_table(results: list[DecisionResult]) -> str:
    header = [
        "db",
        "decisions",
        "check",
        "s",
        "decisions/s",
        "floor/s",
        "ratio",
        "target",
        "argon2 verify ms (cheap / default)",
    ]
    rows = [header]
    for r in results:
        rows.append(
            [
                r.db,
                f"{r.n:,}",
                r.check.split(" ")[0],
                f"{r.decisions_s:.2f}",
                f"{r.per_s:,.1f}",
                f"{r.floor_per_s:,.0f}",
                f"{r.ratio:.1%}",
                "met" if r.ratio >= TARGET else f"not met (>= {TARGET:.0%})",
                f"{r.verify_cheap_ms:.2f} / {r.verify_default_ms:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def without_verify_ms(r: DecisionResult) -> float:
    """Milliseconds per decision less one argon2 verify with the parameters it used."""
    return max(1000 / r.per_s - r.verify_cheap_ms, 1e-6)


def describe(r: DecisionResult) -> str:
    return "\n".join(
        [
            f"[{r.db}] {r.n:,} decisions (setup: units, people, proposals {r.setup_s:.1f} s, "
            "not measured)",
            f"  decisions: {r.decisions_s:.2f} s = {r.per_s:,.1f}/s ({1000 / r.per_s:.1f} ms each)"
            f" -> {r.check}",
            f"  floor: {r.floor_per_s:,.0f}/s (before {r.floor_runs[0]:,.0f}/s, after "
            f"{r.floor_runs[1]:,.0f}/s); ratio {r.ratio:.1%} (target >= {TARGET:.0%})",
            f"  SQL statements per iteration: {r.statements:.1f} (decision) vs "
            f"{r.floor_statements:.1f} (floor)",
            f"  argon2 verify: {r.verify_cheap_ms:.2f} ms with TestConfig's parameters, "
            f"{r.verify_default_ms:.1f} ms with the library defaults (production)",
            # The floor has no re-authentication: show the ratio with the (cheap) verify taken
            # out, and what production's verify would make of the decision rate.
            f"  without the verify: {1000 / without_verify_ms(r):,.1f}/s, ratio "
            f"{1000 / without_verify_ms(r) / r.floor_per_s:.1%}; with the production verify: "
            f"{1000 / (without_verify_ms(r) + r.verify_default_ms):,.1f}/s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("-n", type=int, default=300, help="decisions (default 300)")
    parser.add_argument("--profile", action="store_true", help="cProfile the decisions")
    args = parser.parse_args(argv)
    result, profile_text = run(args.db, args.n, profile=args.profile)
    print(describe(result))
    print("  " + NOTE)
    print()
    print(format_table([result]))
    if profile_text:
        print()
        print(profile_text)
    return 0 if result.check == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
