"""Run every benchmark in bench/ and print one combined table.

For now that is the reminder sweep (bench_sweep) on SQLite and, when PostgreSQL answers at
``BENCH_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/bench``), on
PostgreSQL too. Nothing here asserts a speed; the figures are only printed.

Usage: ``.venv/bin/python -m bench.run [--quick] [--seed N]`` (``--quick``: 2,000 deadlines).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time

from bench import bench_sweep

QUICK_DEADLINES = 2_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Escalate benchmarks.")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_DEADLINES:,} deadlines instead of 10,000"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    deadlines = QUICK_DEADLINES if args.quick else 10_000

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
        result, _profile = bench_sweep.run(kind, deadlines, args.seed)
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
    return 0 if all(r.check == "OK" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
