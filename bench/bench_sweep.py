"""Benchmark: one reminder sweep over N due deadlines (SQLite or PostgreSQL).

What it does (see bench/README.md for the meaning of every figure):

1. Builds a fresh database with the real migrations, ~100 units (each with a lead and an
   accountable executive) and N deadlines created through ``create_deadline`` (so their
   reminders are planned by ``plan_reminders``). The clock is frozen at 07:00 London on the
   tick day while they are created; their due dates are spread over a window of working
   days chosen so that every deadline has exactly one reminder at 08:00 on the tick day
   (5 and 1 working days before due, on the due day, 1 day overdue, escalation after the
   2-day grace). This setup is timed separately; it is not the measured figure.
2. A plain SQL baseline: in one transaction, read the same N pending, due reminder rows and
   insert N simple rows into a scratch table.
3. The measured sweep: the clock moves to the tick (08:00 London, the moment every one of
   those reminders falls due) and ``process_due_reminders(tick)`` runs once.

Lateness of a reminder = (tick - send_at) + (wall time from the start of the sweep to the
commit of the batch that wrote its outbox row). An e-mail is only visible to the mailer once
its batch commits, so this is how long after its ``send_at`` each reminder really left the
sweep, assuming the scheduler woke exactly at the tick (with ``SWEEP_SECONDS`` = 60 a real
scheduler adds up to 60 s of polling delay on top).

Run: ``.venv/bin/python -m bench.bench_sweep [--db sqlite|postgres] [--deadlines N]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import time_machine  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import event  # noqa: E402

from config import TestConfig  # noqa: E402
from state_machines import get_framework, parse_duration  # noqa: E402
from workflow_app import create_app  # noqa: E402
from workflow_app.extensions import db  # noqa: E402
from workflow_app.models.deadlines import DigestItem, Reminder  # noqa: E402
from workflow_app.models.org import Person, Unit  # noqa: E402
from workflow_app.models.outbox import OutboxMessage  # noqa: E402
from workflow_app.scheduling.reminders import BATCH_SIZE, process_due_reminders  # noqa: E402
from workflow_app.services.deadlines import calendar_for, create_deadline  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
UNITS = 100
#: The tick day: a Wednesday in GMT with no bank holiday within the deadline window.
TICK_DAY = date(2030, 3, 13)
COMMIT_EVERY = 500


@dataclass
class SweepResult:
    """The figures of one run (one database, one N)."""

    db: str
    deadlines: int
    setup_s: float
    due_before: int
    processed: int
    sent: int
    digested: int
    skipped: int
    outbox_rows: int
    check: str
    batches: int
    sweep_s: float
    per_s: float
    first_commit_s: float
    batch_median_s: float
    batch_max_s: float
    p50_s: float
    p99_s: float
    max_s: float
    baseline_s: float
    ratio: float


# --- databases ---------------------------------------------------------------------------


def postgres_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES_URL)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_available(url: str | None = None) -> str | None:
    """None when the PostgreSQL server answers (creating the bench database if needed)."""
    url = url or postgres_url()
    target = sa.engine.make_url(url)
    admin = target.set(database="postgres")
    try:
        engine = sa.create_engine(
            admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {target.render_as_string()}: {error!r}"[:300]
    return None


def make_app(url: str) -> Flask:
    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = url

    return create_app(Cfg)


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A migrated, empty database: a temp SQLite file, or the ``bench`` PostgreSQL database."""
    from flask_migrate import upgrade

    tmpdir = None
    if kind == "postgres":
        url = postgres_url()
        if sa.engine.make_url(url).database == "test":
            raise SystemExit("refusing to use the 'test' database; use 'bench'")
        reason = postgres_available(url)
        if reason:
            raise SystemExit(reason)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        tmpdir = tempfile.mkdtemp(prefix="escalate-bench-")
        url = f"sqlite:///{tmpdir}/bench.sqlite3"
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    try:
        yield url
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


# --- data --------------------------------------------------------------------------------


def _offsets(framework_name: str) -> list[int]:
    """Working-day offsets from the due day of every reminder the framework plans.

    A deadline due ``-offset`` working days from the tick day has a reminder at 08:00 on it.
    """
    settings = get_framework(framework_name).reminders or {}
    days = [
        parse_duration(v).amount
        for v in settings.get("before_due", ["5 working days", "1 working day"])
    ]
    result = [-d for d in days] + [0]
    result += [parse_duration(v).amount for v in settings.get("after_due", ["1 working day"])]
    result.append(parse_duration(settings.get("overdue_grace", "2 working days")).amount)
    return result


def populate(app: Flask, n: int, seed: int) -> tuple[datetime, float]:
    """Create units, people and ``n`` deadlines; return the tick and the setup seconds."""
    rng = random.Random(seed)
    framework = app.config["ESCALATE_FRAMEWORK"]
    calendar = calendar_for(framework)
    tick = calendar.reminder_at(TICK_DAY)
    created_at = calendar.at_local_time(TICK_DAY, dtime(7, 0))
    due_days = [calendar.add_working_days(TICK_DAY, -o) for o in _offsets(framework)]
    start = time.perf_counter()
    with app.app_context(), time_machine.travel(created_at, tick=False):
        people = [
            Person(name=f"Bench person {i}", email=f"bench{i}@example.nhs.uk")
            for i in range(2 * UNITS)
        ]
        db.session.add_all(people)
        db.session.flush()
        units = [
            Unit(
                code=f"B{i:03d}",
                name=f"Bench unit {i}",
                kind="operational_directorate",
                framework=framework,
                lead_id=people[2 * i].id,
                accountable_executive_id=people[2 * i + 1].id,
            )
            for i in range(UNITS)
        ]
        db.session.add_all(units)
        db.session.commit()
        unit_ids = [u.id for u in units]
        for i in range(n):
            if i % COMMIT_EVERY == 0:
                db.session.commit()
                db.session.expunge_all()
                by_id = {u.id: u for u in db.session.scalars(sa.select(Unit))}
            unit = by_id[unit_ids[i % UNITS]]
            due_day = due_days[i % len(due_days)]
            create_deadline(
                dedupe_key=f"bench:{seed}:{i}",
                kind="bench",
                title=f"Bench obligation {i}",
                unit=unit,
                framework=framework,
                due_at=calendar.at_local_time(due_day, calendar.due_time)
                + timedelta(minutes=rng.randrange(0, 60)),
            )
        db.session.commit()
        db.session.remove()
    return tick, time.perf_counter() - start


# --- measurements ------------------------------------------------------------------------


def baseline(app: Flask, tick: datetime) -> tuple[float, int]:
    """Read the due pending reminders and insert one scratch row each, one transaction."""
    scratch = sa.Table(
        "bench_scratch",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reminder_id", sa.Integer, nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
    )
    select = sa.text(
        "SELECT id, send_at FROM reminders WHERE status = 'pending' AND send_at <= :now"
    ).bindparams(sa.bindparam("now", type_=Reminder.__table__.c.send_at.type))
    with app.app_context():
        engine = db.engine
        scratch.drop(engine, checkfirst=True)
        scratch.create(engine)
        start = time.perf_counter()
        with engine.begin() as conn:
            rows = conn.execute(select, {"now": tick}).all()
            conn.execute(
                scratch.insert(),
                [{"reminder_id": r.id, "note": f"reminder:{r.id}"} for r in rows],
            )
        elapsed = time.perf_counter() - start
        scratch.drop(engine)
    return elapsed, len(rows)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def sweep(app: Flask, tick: datetime, profile: bool = False) -> dict:
    """Run ``process_due_reminders(tick)`` once with the clock at the tick; time it."""
    with app.app_context():
        session = db.session()
        send_at = {
            rid: at
            for rid, at in session.execute(
                sa.select(Reminder.id, Reminder.send_at).where(
                    Reminder.status == "pending", Reminder.send_at <= tick
                )
            )
        }
        outbox_before = session.scalar(sa.select(sa.func.count(OutboxMessage.id)))
        session.rollback()
        pending: list[int] = []
        committed: dict[int, float] = {}
        commits: list[float] = []
        t0 = 0.0

        def after_flush(sess, _context):
            for obj in sess.new:
                if isinstance(obj, OutboxMessage) and obj.dedupe_key.startswith("reminder:"):
                    pending.append(int(obj.dedupe_key.partition(":")[2]))
                elif isinstance(obj, DigestItem) and obj.reminder_id is not None:
                    pending.append(obj.reminder_id)

        def on_execute(state):
            # Rows written with a bulk (executemany) INSERT never appear in ``sess.new``.
            if not state.is_insert:
                return
            table = getattr(state.statement, "table", None)
            params = state.parameters
            rows = params if isinstance(params, list) else [params] if params else []
            if table is OutboxMessage.__table__:
                for row in rows:
                    if row.get("dedupe_key", "").startswith("reminder:"):
                        pending.append(int(row["dedupe_key"].partition(":")[2]))
            elif table is DigestItem.__table__:
                pending.extend(r["reminder_id"] for r in rows if r.get("reminder_id"))

        def after_commit(_sess):
            offset = time.perf_counter() - t0
            commits.append(offset)
            for rid in pending:
                committed[rid] = offset
            pending.clear()

        def after_rollback(_sess, _previous_transaction):
            pending.clear()

        event.listen(session, "after_flush", after_flush)
        event.listen(session, "do_orm_execute", on_execute)
        event.listen(session, "after_commit", after_commit)
        event.listen(session, "after_soft_rollback", after_rollback)
        profiler = cProfile.Profile() if profile else None
        try:
            with time_machine.travel(tick, tick=True):
                t0 = time.perf_counter()
                if profiler:
                    profiler.enable()
                report = process_due_reminders(tick)
                elapsed = time.perf_counter() - t0
                if profiler:
                    profiler.disable()
        finally:
            event.remove(session, "after_flush", after_flush)
            event.remove(session, "do_orm_execute", on_execute)
            event.remove(session, "after_commit", after_commit)
            event.remove(session, "after_soft_rollback", after_rollback)
        outbox_after = db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)))
        db.session.remove()
    lateness = [
        (tick - send_at[rid].replace(tzinfo=send_at[rid].tzinfo or UTC)).total_seconds() + offset
        for rid, offset in committed.items()
    ]
    profile_text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        profile_text = out.getvalue()
    return {
        "due_before": len(send_at),
        "report": report,
        "elapsed": elapsed,
        "outbox_rows": outbox_after - outbox_before,
        "lateness": lateness,
        "batches": len(commits),
        "first_commit": commits[0] if commits else float("nan"),
        "batch_s": [b - a for a, b in zip([0.0, *commits], commits, strict=False)],
        "profile": profile_text,
    }


def run(kind: str = "sqlite", deadlines: int = 10_000, seed: int = 1, profile: bool = False):
    """Build, baseline, sweep; return a :class:`SweepResult` (and the profile text)."""
    with fresh_database(kind) as url:
        app = make_app(url)
        tick, setup_s = populate(app, deadlines, seed)
        baseline_s, baseline_rows = baseline(app, tick)
        measured = sweep(app, tick, profile=profile)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    report = measured["report"]
    processed = report.sent + report.digested + report.skipped
    ok = (
        measured["outbox_rows"] == report.sent + report.digested
        and report.sent + report.digested == processed
        and processed == measured["due_before"] == baseline_rows
        and len(measured["lateness"]) == processed
    )
    lateness = measured["lateness"]
    result = SweepResult(
        db=kind,
        deadlines=deadlines,
        setup_s=setup_s,
        due_before=measured["due_before"],
        processed=processed,
        sent=report.sent,
        digested=report.digested,
        skipped=report.skipped,
        outbox_rows=measured["outbox_rows"],
        check="OK" if ok else "MISMATCH",
        batches=measured["batches"],
        sweep_s=measured["elapsed"],
        per_s=processed / measured["elapsed"] if measured["elapsed"] else float("nan"),
        first_commit_s=measured["first_commit"],
        batch_median_s=statistics.median(measured["batch_s"]) if measured["batch_s"] else 0.0,
        batch_max_s=max(measured["batch_s"], default=0.0),
        p50_s=percentile(lateness, 50),
        p99_s=percentile(lateness, 99),
        max_s=max(lateness) if lateness else float("nan"),
        baseline_s=baseline_s,
        ratio=measured["elapsed"] / baseline_s if baseline_s else float("nan"),
    )
    return result, measured["profile"]


# --- output ------------------------------------------------------------------------------

COLUMNS = [
    ("db", "db", "{}"),
    ("deadlines", "deadlines", "{:,}"),
    ("processed", "reminders", "{:,}"),
    ("outbox_rows", "outbox", "{:,}"),
    ("check", "check", "{}"),
    ("sweep_s", "sweep s", "{:.2f}"),
    ("per_s", "rem/s", "{:,.0f}"),
    ("p50_s", "late p50 s", "{:.2f}"),
    ("p99_s", "late p99 s", "{:.2f}"),
    ("max_s", "late max s", "{:.2f}"),
    ("baseline_s", "baseline s", "{:.3f}"),
    ("ratio", "ratio", "{:.1f}x"),
    ("setup_s", "setup s", "{:.1f}"),
]

LATENESS_NOTE = (
    "lateness = (tick - send_at) + wall time from sweep start to the commit of the reminder's "
    "batch;\n  the tick is max(send_at) (08:00 London, when all of them fall due), so it is "
    "how long after\n  its send_at each e-mail became visible in the outbox (polling delay of "
    "the scheduler not included)."
)


def format_table(results: list[SweepResult]) -> str:
    rows = [[title for _key, title, _fmt in COLUMNS]]
    for result in results:
        values = asdict(result)
        rows.append([fmt.format(values[key]) for key, _title, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(result: SweepResult) -> str:
    return "\n".join(
        [
            f"[{result.db}] {result.deadlines:,} deadlines over {UNITS} units "
            f"(setup through create_deadline: {result.setup_s:.1f} s, not measured)",
            f"  due at the tick: {result.due_before:,} reminders; sweep processed "
            f"{result.processed:,} (sent {result.sent:,}, digest {result.digested:,}, "
            f"skipped {result.skipped:,}) in {result.batches} batch commits of up to "
            f"{BATCH_SIZE}",
            f"  sweep: {result.sweep_s:.2f} s = {result.per_s:,.0f} reminders/s; first batch "
            f"committed after {result.first_commit_s:.2f} s; one batch takes "
            f"{result.batch_median_s:.2f} s (median), {result.batch_max_s:.2f} s (max)",
            f"  outbox rows written: {result.outbox_rows:,} -> {result.check}",
            f"  lateness p50 {result.p50_s:.2f} s, p99 {result.p99_s:.2f} s, "
            f"max {result.max_s:.2f} s",
            f"  baseline (plain SQL read + {result.due_before:,} inserts, one transaction): "
            f"{result.baseline_s:.3f} s; sweep / baseline = {result.ratio:.1f}x",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--deadlines", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the sweep and print the top entries"
    )
    args = parser.parse_args(argv)
    result, profile_text = run(args.db, args.deadlines, args.seed, profile=args.profile)
    print(describe(result))
    print("  " + LATENESS_NOTE)
    print()
    print(format_table([result]))
    if profile_text:
        print()
        print(profile_text)
    return 0 if result.check == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
