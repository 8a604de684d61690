"""Run every benchmark in bench/ and print one combined table.

The reminder sweep (bench_sweep), the import + evaluation of a synthetic body
(bench_evaluation) and audited decisions vs the ORM floor (bench_decisions), each on SQLite
and, when PostgreSQL answers at ``BENCH_DATABASE_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/bench``), on PostgreSQL too; then full
lifecycles through the services vs SpiffWorkflow on SQLite (bench_lifecycle); the
executive home page and the register under 50 connections over gunicorn vs a minimal Flask
page (bench_pages, both databases); the peak RSS of a web worker serving the demo
(bench_memory). Each benchmark runs in a fresh interpreter (``isolated``), so none pays for
what another left behind. Nothing here asserts a speed; the figures are only printed.

Usage: ``.venv/bin/python -m bench.run [--quick] [--seed N]`` (``--quick``: 2,000 deadlines,
a body of 20 units x 20 measures x 24 months instead of 100 x 50 x 36, 100 decisions instead
of 300, 20 lifecycles instead of 100, and pages measured 5 s each on 100 units and 10,000
audit rows instead of 20 s on 500 units (1,000 cases) and 100,000 audit rows).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from bench import (
    bench_decisions,
    bench_evaluation,
    bench_lifecycle,
    bench_memory,
    bench_pages,
    bench_sweep,
)

QUICK_DEADLINES = 2_000
#: (units, measures, months) of bench_evaluation's synthetic body.
FULL_BODY = (100, 50, 36)
QUICK_BODY = (20, 20, 24)
#: decisions of bench_decisions, lifecycles of bench_lifecycle: (full, quick).
DECISIONS = (300, 100)
LIFECYCLES = (100, 20)


def isolated(run, *args, **kwargs):
    """``run(*args, **kwargs)`` in a fresh interpreter (a spawned process), its result
    returned. The benchmarks would otherwise share this process: what one leaves behind
    (apps, engines, caches, a fragmented heap) slowed the next; the 36-month review ran
    about 30 % slower after the sweep than on its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run, *args, **kwargs).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Escalate benchmarks.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_DEADLINES:,} deadlines instead of 10,000; a body of "
        f"{' x '.join(map(str, QUICK_BODY))} instead of {' x '.join(map(str, FULL_BODY))}; "
        f"{DECISIONS[1]} decisions instead of {DECISIONS[0]}; {LIFECYCLES[1]} lifecycles instead "
        f"of {LIFECYCLES[0]}",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    deadlines = QUICK_DEADLINES if args.quick else 10_000
    body = QUICK_BODY if args.quick else FULL_BODY

    databases = ["sqlite"]
    reason = bench_sweep.postgres_available()
    if reason is None:
        databases.append("postgres")
    else:
        print(f"skipping postgres: {reason}", file=sys.stderr)

    started = time.perf_counter()
    results = []
    for kind in databases:
        print(f"bench_sweep on {kind}, {deadlines:,} deadlines ...", file=sys.stderr, flush=True)
        result, _profile = isolated(bench_sweep.run, kind, deadlines, args.seed)
        results.append(result)
        print(bench_sweep.describe(result))
        print()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"bench_sweep: one process_due_reminders() sweep "
        f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}; "
        f"total {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_sweep.LATENESS_NOTE)
    print()
    print(bench_sweep.format_table(results))
    print()

    evaluated = []
    for kind in databases:
        print(
            f"bench_evaluation on {kind}, {' x '.join(map(str, body))} body ...",
            file=sys.stderr,
            flush=True,
        )
        result, _profile = isolated(bench_evaluation.run, kind, *body, seed=args.seed)
        evaluated.append(result)
        print(bench_evaluation.describe(result))
        print()
    print(
        f"bench_evaluation: import and review of {' x '.join(map(str, body))} "
        f"units x measures x months (total so far {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_evaluation.NOTE)
    print()
    print(bench_evaluation.format_table(evaluated))
    print()

    decisions = DECISIONS[1] if args.quick else DECISIONS[0]
    decided = []
    for kind in databases:
        print(f"bench_decisions on {kind}, {decisions} decisions ...", file=sys.stderr, flush=True)
        result, _profile = isolated(bench_decisions.run, kind, decisions)
        decided.append(result)
        print(bench_decisions.describe(result))
        print()
    print(
        f"bench_decisions: audited decisions vs the ORM floor "
        f"(total so far {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_decisions.NOTE)
    print()
    print(bench_decisions.format_table(decided))
    print()

    lifecycles = LIFECYCLES[1] if args.quick else LIFECYCLES[0]
    print(f"bench_lifecycle on sqlite, {lifecycles} lifecycles ...", file=sys.stderr, flush=True)
    cycled, _profile = isolated(bench_lifecycle.run, lifecycles)
    print(bench_lifecycle.describe(cycled))
    print()
    print(
        f"bench_lifecycle: full lifecycles, services vs SpiffWorkflow "
        f"(total {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_lifecycle.NOTE)
    print()
    print(bench_lifecycle.format_table([cycled]))
    print()

    served = []
    for kind in databases:
        print(f"bench_pages on {kind} ...", file=sys.stderr, flush=True)
        if args.quick:
            served += bench_pages.run(kind, 5.0, units=100, audit_rows=10_000)
        else:
            served += bench_pages.run(kind)
    print(
        f"bench_pages: home page and register over gunicorn -w 2 vs a minimal Flask page "
        f"(total so far {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_pages.NOTE)
    print()
    print(bench_pages.format_table(served))
    print()

    print("bench_memory: the demo, one gunicorn worker ...", file=sys.stderr, flush=True)
    memory = bench_memory.run()
    print(
        f"bench_memory: peak RSS of a web worker with the demo data "
        f"(total {time.perf_counter() - started:.0f} s)"
    )
    print("  " + bench_memory.NOTE)
    print()
    print(bench_memory.format_table([memory]))
    checks = [r.check for r in results] + [r.check for r in evaluated]
    checks += [r.check for r in decided] + [cycled.check]
    checks += [r.check for r in served] + [memory.check]
    return 0 if all(c == "OK" for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
