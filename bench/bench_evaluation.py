"""Benchmark: import and evaluate a synthetic body of units x measures x months.

What it does (see bench/README.md for the meaning of every figure):

1. Builds a fresh database with the real migrations, U units (with their level-1 cases,
   as ``open_cases_for_unit`` opens them), U x M measures (taken in turn from the demo's
   measure table, so their targets, directions, tolerances and units of measure are
   realistic) and one person with the ``performance_team`` role. The clock is frozen the day
   before the first month, so the cases existed before the data. Not measured.
2. Builds two CSV files in memory: a long-layout performance pack with one row per unit,
   measure and month (U x M x T rows; the trajectory is filled for local-trajectory
   measures) and a finance return with one row per unit and month (U x T rows). Every tenth
   unit is failing some of its measures and every tenth (another) unit overspends, so the
   review has proposals to store. Not measured.
3. Imports them through the real path, each step timed on its own: ``parse_file``,
   ``validate`` (the preview's check against the database) and ``load_rows`` + commit
   (which validates the rows again before storing them, as the real "Load" step does).
4. Reviews every month in order, one transaction per month (the clock 15 days after the
   last month): the months before the last as a backfill, ``review_months`` (the values
   read once for the whole span), then the last month alone, ``run_review(month)``, as the
   scheduler reviews each new month.
5. The pure evaluation of the last month: ``unit_inputs(units, month)`` for every unit, as
   ``run_review`` reads them (the database loading), then ``evaluate_unit`` alone on those
   prebuilt inputs as the review runs it (``measures=False``: the proposals only, decision
   0041), and the full evaluation (with every measure's evaluation) for comparison;
   prebuilt inputs.
6. A plain SQL baseline: ``SELECT measure_id, period, value FROM monthly_actuals`` (all
   U x M x T rows) and the same restricted to the last month (U x M rows).

Run: ``.venv/bin/python -m bench.bench_evaluation [--db sqlite|postgres] [--units 100]
[--measures 50] [--months 36] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import logging
import pstats
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import time_machine  # noqa: E402
from flask import Flask  # noqa: E402

from bench.bench_sweep import fresh_database, make_app  # noqa: E402
from state_machines import get_framework  # noqa: E402
from workflow_app.demo import DOMAINS, MEASURES  # noqa: E402
from workflow_app.evaluation import evaluate_unit  # noqa: E402
from workflow_app.extensions import db  # noqa: E402
from workflow_app.imports.load import load_rows  # noqa: E402
from workflow_app.imports.parse import parse_file  # noqa: E402
from workflow_app.imports.validate import validate  # noqa: E402
from workflow_app.models.cases import Decision  # noqa: E402
from workflow_app.models.measures import (  # noqa: E402
    FinancePosition,
    Measure,
    MonthlyActual,
    TrajectoryValue,
)
from workflow_app.models.org import Domain, Person, RoleGrant, Unit  # noqa: E402
from workflow_app.models.roles import PERFORMANCE_TEAM  # noqa: E402
from workflow_app.services.org import open_cases_for_unit  # noqa: E402
from workflow_app.services.review import (  # noqa: E402
    _gc_paused,
    review_months,
    run_review,
    unit_inputs,
)

#: The last month of the body; the body runs back ``months`` months from it.
LAST_MONTH = date(2025, 12, 1)
#: A unit's monthly budget; the demo gives money measures' targets as a share of it.
MONTHLY_BUDGET = 1_000_000


@dataclass
class Phase:
    """One timed step: ``rows`` rows in ``seconds``; ``baseline_s`` reads the same rows."""

    name: str
    rows: int
    seconds: float
    baseline_s: float
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline_s if self.baseline_s else float("nan")


@dataclass
class EvaluationResult:
    """The figures of one run (one database, one body)."""

    db: str
    units: int
    measures: int
    months: int
    performance_rows: int
    finance_rows: int
    setup_s: float
    csv_mb: float
    phases: list[Phase]
    stored_actuals: int
    stored_trajectories: int
    stored_finance: int
    proposals: int
    month_s: list[float] = field(default_factory=list)
    baseline_all_rows: int = 0
    baseline_month_rows: int = 0
    check: str = "OK"
    problems: list[str] = field(default_factory=list)


# --- data --------------------------------------------------------------------------------


def month_list(months: int) -> list[date]:
    """``months`` consecutive months ending with :data:`LAST_MONTH`."""
    last = LAST_MONTH.year * 12 + LAST_MONTH.month - 1
    return [date(m // 12, m % 12 + 1, 1) for m in range(last - months + 1, last + 1)]


def measure_specs(n: int) -> list[tuple[str, object]]:
    """``n`` (code, spec) pairs: the demo's measures in turn, suffixed after the first pass."""
    table = list(MEASURES.items())
    out = []
    for i in range(n):
        code, spec = table[i % len(table)]
        out.append((code if i < len(table) else f"{code}{i // len(table)}", spec))
    return out


def _scaled(spec, value: float) -> float:
    return value * MONTHLY_BUDGET if spec.scale_with_budget else value


def actual_value(spec, rng: random.Random, failing: bool, step: int) -> str:
    """A plausible actual: near target on the good side, or beyond tolerance when failing."""
    target, tolerance = _scaled(spec, spec.target), _scaled(spec, spec.tolerance)
    good = 1 if spec.direction == "higher_is_better" else -1
    if failing:
        value = target - good * tolerance * (1.5 + 0.05 * step + rng.uniform(0, 0.5))
    else:
        value = target + good * tolerance * rng.uniform(-0.6, 1.2)
    low, high = spec.lower_bound, spec.maximum
    if spec.unit_of_measure == "percent":  # the import refuses a percentage above 100
        high = 100.0 if high is None else min(high, 100.0)
    value = max(low, value)
    if high is not None:
        value = min(high, value)
    decimals = 0 if spec.unit_of_measure == "count" else min(spec.decimals, 4)
    return f"{value:.{decimals}f}"


def build_files(
    codes: list[str], specs: list[tuple[str, object]], months: list[date], seed: int
) -> tuple[bytes, bytes]:
    """The performance pack (long layout) and the finance return, as CSV bytes."""
    rng = random.Random(seed)
    perf = io.StringIO()
    writer = csv.writer(perf, lineterminator="\r\n")
    writer.writerow(["unit_code", "measure_code", "month", "actual", "trajectory"])
    for u, unit_code in enumerate(codes):
        failing_unit = u % 10 == 3
        for m, (code, spec) in enumerate(specs):
            failing = failing_unit and m % 3 == 0
            trajectory = (
                f"{_scaled(spec, spec.target):g}" if spec.kind == "local_trajectory" else ""
            )
            for step, month in enumerate(months):
                value = actual_value(spec, rng, failing, step)
                writer.writerow([unit_code, code, f"{month:%Y-%m}", value, trajectory])
    fin = io.StringIO()
    writer = csv.writer(fin, lineterminator="\r\n")
    writer.writerow(["unit_code", "month", "ytd_variance", "forecast_variance", "budget"])
    for u, unit_code in enumerate(codes):
        drift = 70_000 if u % 10 == 7 else rng.uniform(-20_000, 15_000)
        for month in months:
            in_year = (month.month - 4) % 12 + 1  # financial year from April
            ytd = drift * in_year + rng.uniform(-5_000, 5_000)
            forecast = ytd * 12 / in_year
            writer.writerow(
                [unit_code, f"{month:%Y-%m}", f"{ytd:.2f}", f"{forecast:.2f}", 12 * MONTHLY_BUDGET]
            )
    return perf.getvalue().encode(), fin.getvalue().encode()


def populate(app: Flask, units: int, measures: int, months: list[date]) -> tuple[list[str], float]:
    """Units with their cases, measures, one analyst; return the unit codes and seconds."""
    framework = app.config["ESCALATE_FRAMEWORK"]
    setup_at = datetime.combine(months[0] - timedelta(days=1), datetime.min.time(), UTC)
    start = time.perf_counter()
    with app.app_context(), time_machine.travel(setup_at, tick=False):
        domains = {}
        for code, name in DOMAINS:
            domains[code] = Domain(code=code, name=name)
            db.session.add(domains[code])
        analyst = Person(name="Bench analyst", email="bench.analyst@example.nhs.uk")
        analyst.grants = [RoleGrant(role=PERFORMANCE_TEAM)]
        db.session.add(analyst)
        db.session.flush()
        codes = []
        for i in range(units):
            unit = Unit(
                code=f"B{i:04d}",
                name=f"Bench unit {i}",
                kind="operational_directorate",
                framework=framework,
            )
            db.session.add(unit)
            db.session.flush()
            open_cases_for_unit(unit)
            codes.append(unit.code)
            for code, spec in measure_specs(measures):
                db.session.add(
                    Measure(
                        unit_id=unit.id,
                        domain_id=domains[spec.domain].id,
                        code=code,
                        name=spec.name,
                        kind=spec.kind,
                        target=round(_scaled(spec, spec.target), 4),
                        direction=spec.direction,
                        tolerance=round(_scaled(spec, spec.tolerance), 4),
                        unit_of_measure=spec.unit_of_measure,
                    )
                )
        db.session.commit()
        db.session.remove()
    return codes, time.perf_counter() - start


# --- measurements ------------------------------------------------------------------------


def baseline(app: Flask, month: date) -> tuple[float, int, float, int]:
    """Plain SQL reads: every actual, then the last month's; (seconds, rows) of each, the
    best of three runs (one read is short enough for a hiccup of the machine to double it)."""
    every = sa.text("SELECT measure_id, period, value FROM monthly_actuals")
    one = sa.text(
        "SELECT measure_id, period, value FROM monthly_actuals WHERE period = :period"
    ).bindparams(sa.bindparam("period", type_=sa.Date))
    with app.app_context():
        engine = db.engine
        with engine.connect() as conn:  # warm the connection, as the session's is warm
            conn.execute(sa.text("SELECT 1")).all()
            all_s = month_s = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                all_rows = conn.execute(every).all()
                all_s = min(all_s, time.perf_counter() - start)
                start = time.perf_counter()
                month_rows = conn.execute(one, {"period": month}).all()
                month_s = min(month_s, time.perf_counter() - start)
        db.session.remove()
    return all_s, len(all_rows), month_s, len(month_rows)


def _profiled(profiler: cProfile.Profile | None):
    class _Ctx:
        def __enter__(self):
            if profiler:
                profiler.enable()

        def __exit__(self, *exc):
            if profiler:
                profiler.disable()

    return _Ctx()


def import_files(
    app: Flask, perf: bytes, fin: bytes, today: date, profiler: cProfile.Profile | None
) -> dict:
    """parse_file, validate, load_rows + commit, each timed; performance then finance."""
    times: dict[str, float] = {}
    with app.app_context():
        for label, content, name in (("perf", perf, "bench-pack.csv"), ("fin", fin, "fin.csv")):
            analyst = db.session.scalar(sa.select(Person).where(Person.email.like("bench.%")))
            analyst.grants  # noqa: B018 - loaded before the clock starts
            with _profiled(profiler):
                start = time.perf_counter()
                parsed = parse_file(content, name)
                times[f"{label}_parse"] = time.perf_counter() - start
                start = time.perf_counter()
                resolved = validate(parsed, today=today)
                times[f"{label}_validate"] = time.perf_counter() - start
                start = time.perf_counter()
                result = load_rows(analyst, parsed, only_valid=False, today=today)
                db.session.commit()
                times[f"{label}_load"] = time.perf_counter() - start
            times[f"{label}_rows"] = len(parsed.rows)
            times[f"{label}_resolved"] = len(resolved)
            times[f"{label}_problems"] = len(parsed.all_problems)
            times[f"{label}_created"] = result.created
            del parsed, resolved, result
            db.session.expunge_all()
        db.session.remove()
    return times


def review_all(app: Flask, months: list[date], profiler: cProfile.Profile | None) -> dict:
    """Every month reviewed in order, committing after each; per-month seconds. As a body
    starting with history would: the months before the last as a backfill
    (``review_months``, which reads the values once for the span; the first month's seconds
    include that read), then the last month on its own (``run_review``, as the scheduler
    runs each new month)."""
    seconds, units, evaluations = [], [], 0
    with app.app_context():
        backfill = review_months(months[:-1])
        for n, month in enumerate(months):
            last = n == len(months) - 1
            with _profiled(profiler if last else None):
                start = time.perf_counter()
                outcome = run_review(month) if last else next(backfill)
                db.session.commit()
                seconds.append(time.perf_counter() - start)
            units.append(outcome.units)
            evaluations += outcome.units  # review_months keeps no evaluations (0040)
            db.session.expunge_all()
        proposals = db.session.scalar(sa.select(sa.func.count(Decision.id)))
        db.session.remove()
    return {"seconds": seconds, "units": units, "evaluations": evaluations, "proposals": proposals}


def split_month(app: Flask, month: date) -> dict:
    """``unit_inputs`` for every unit (database loading, as ``run_review`` does it), then
    ``evaluate_unit`` alone, as the review runs it (proposals only) and in full; all with the
    cyclic collector paused, as inside ``run_review`` (decision 0035), so the phases cost
    what they cost in a review."""
    with app.app_context():
        units = db.session.scalars(
            sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
        ).all()
        with _gc_paused():
            start = time.perf_counter()
            read = unit_inputs(units, month)
            inputs = [(unit.framework, read[unit.id]) for unit in units]
            build_s = time.perf_counter() - start
            db.session.rollback()
            frameworks = {name: get_framework(name) for name, _ in inputs}
            start = time.perf_counter()
            evaluations = [
                evaluate_unit(ui, month, frameworks[name], measures=False) for name, ui in inputs
            ]
            evaluate_s = time.perf_counter() - start
            start = time.perf_counter()
            for name, ui in inputs:
                evaluate_unit(ui, month, frameworks[name])
            full_s = time.perf_counter() - start
        db.session.remove()
    return {
        "build_s": build_s,
        "evaluate_s": evaluate_s,
        "full_s": full_s,
        "evaluations": len(evaluations),
        "proposals": sum(len(e.proposals) for e in evaluations),
    }


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def run(
    kind: str = "sqlite",
    units: int = 100,
    measures: int = 50,
    months: int = 36,
    seed: int = 1,
    profile: bool = False,
) -> tuple[EvaluationResult, str]:
    """Build, import, review, split, baseline; return the result (and the profile text)."""
    periods = month_list(months)
    last = periods[-1]
    after = datetime.combine(last + timedelta(days=45), datetime.min.time(), UTC).replace(
        day=15, hour=9
    )
    today = after.date()
    import_profiler = cProfile.Profile() if profile else None
    review_profiler = cProfile.Profile() if profile else None
    with fresh_database(kind) as url:
        app = make_app(url)
        codes, setup_s = populate(app, units, measures, periods)
        perf, fin = build_files(codes, measure_specs(measures), periods, seed)
        with time_machine.travel(after, tick=True):
            imported = import_files(app, perf, fin, today, import_profiler)
            reviewed = review_all(app, periods, review_profiler)
            split = split_month(app, last)
        all_s, all_rows, month_base_s, month_rows = baseline(app, last)
        with app.app_context():
            stored = (_count(MonthlyActual), _count(TrajectoryValue), _count(FinancePosition))
            db.session.remove()
            db.engine.dispose()

    n_perf = units * measures * months
    n_fin = units * months
    n_month = units * measures
    review_s = sum(reviewed["seconds"])
    phases = [
        Phase("parse", n_perf, imported["perf_parse"], all_s, "parse_file, performance CSV"),
        Phase("validate", n_perf, imported["perf_validate"], all_s, "validate (preview check)"),
        Phase("load", n_perf, imported["perf_load"], all_s, "load_rows (validates again) + commit"),
        Phase(
            "import",
            n_perf,
            imported["perf_parse"] + imported["perf_validate"] + imported["perf_load"],
            all_s,
            "parse + validate + load",
        ),
        Phase(
            "finance import",
            n_fin,
            imported["fin_parse"] + imported["fin_validate"] + imported["fin_load"],
            all_s * n_fin / n_perf if n_perf else 0.0,
            "parse + validate + load of the finance CSV (baseline pro rata)",
        ),
        Phase("review 1 month", n_month, reviewed["seconds"][-1], month_base_s, "last month"),
        Phase("unit_inputs", n_month, split["build_s"], month_base_s, "DB loading, last month"),
        Phase(
            "evaluate_unit",
            n_month,
            split["evaluate_s"],
            month_base_s,
            "pure, last month, proposals only (as the review)",
        ),
        Phase("full evaluation", n_month, split["full_s"], month_base_s, "with every measure"),
        Phase(f"review {months} months", n_perf, review_s, all_s, "commit per month"),
    ]
    problems = []
    expect = {
        "performance rows parsed": (imported["perf_rows"], n_perf),
        "performance rows valid": (imported["perf_resolved"], n_perf),
        "finance rows valid": (imported["fin_resolved"], n_fin),
        "problems found": (imported["perf_problems"] + imported["fin_problems"], 0),
        "actuals stored": (stored[0], n_perf),
        "finance positions stored": (stored[2], n_fin),
        "baseline rows (all)": (all_rows, n_perf),
        "baseline rows (month)": (month_rows, n_month),
        "units reviewed": (sum(reviewed["units"]), units * months),
        "units evaluated (split)": (split["evaluations"], units),
    }
    for what, (got, want) in expect.items():
        if got != want:
            problems.append(f"{what}: {got:,} (expected {want:,})")
    result = EvaluationResult(
        db=kind,
        units=units,
        measures=measures,
        months=months,
        performance_rows=n_perf,
        finance_rows=n_fin,
        setup_s=setup_s,
        csv_mb=(len(perf) + len(fin)) / 1e6,
        phases=phases,
        stored_actuals=stored[0],
        stored_trajectories=stored[1],
        stored_finance=stored[2],
        proposals=reviewed["proposals"],
        month_s=reviewed["seconds"],
        baseline_all_rows=all_rows,
        baseline_month_rows=month_rows,
        check="MISMATCH" if problems else "OK",
        problems=problems,
    )
    profile_text = ""
    if profile:
        for title, profiler in (
            ("import (parse + validate + load_rows, both files)", import_profiler),
            ("review of the last month", review_profiler),
        ):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            out2 = io.StringIO()
            pstats.Stats(profiler, stream=out2).sort_stats("tottime").print_stats(15)
            profile_text += f"=== cProfile: {title} ===\n{out.getvalue()}\n{out2.getvalue()}\n"
    return result, profile_text


# --- output ------------------------------------------------------------------------------

COLUMNS = ("db", "phase", "rows", "s", "rows/s", "baseline s", "ratio")


def format_table(results: list[EvaluationResult]) -> str:
    rows = [list(COLUMNS)]
    for result in results:
        for phase in result.phases:
            rows.append(
                [
                    result.db,
                    phase.name,
                    f"{phase.rows:,}",
                    f"{phase.seconds:.2f}",
                    f"{phase.per_s:,.0f}",
                    f"{phase.baseline_s:.3f}",
                    f"{phase.ratio:,.0f}x",
                ]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i in (0, 1) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(result: EvaluationResult) -> str:
    months = result.month_s
    by = {p.name: p for p in result.phases}
    one, build, pure = by["review 1 month"], by["unit_inputs"], by["evaluate_unit"]
    lines = [
        f"[{result.db}] {result.units} units x {result.measures} measures x {result.months} "
        f"months = {result.performance_rows:,} performance rows + {result.finance_rows:,} "
        f"finance rows ({result.csv_mb:.1f} MB of CSV); setup {result.setup_s:.1f} s, "
        "not measured",
        f"  stored: {result.stored_actuals:,} actuals, {result.stored_trajectories:,} "
        f"trajectory values, {result.stored_finance:,} finance positions -> {result.check}",
        f"  review per month: first {months[0]:.2f} s, median {statistics.median(months):.2f} s,"
        f" max {max(months):.2f} s, last {months[-1]:.2f} s; {result.proposals:,} proposals "
        "stored over all months",
        f"  last month: unit_inputs {build.seconds:.2f} s + evaluate_unit {pure.seconds:.2f} s"
        f" ({100 * pure.seconds / max(build.seconds + pure.seconds, 1e-9):.0f} % evaluation); "
        f"run_review {one.seconds:.2f} s",
        f"  baseline: SELECT measure_id, period, value FROM monthly_actuals: "
        f"{result.baseline_all_rows:,} rows in {by['import'].baseline_s:.3f} s; last month "
        f"only: {result.baseline_month_rows:,} rows in {one.baseline_s:.4f} s",
    ]
    lines += [f"  MISMATCH {p}" for p in result.problems]
    return "\n".join(lines)


NOTE = (
    "rows = performance values the phase handles (a month = units x measures); "
    "ratio = s / baseline s,\n  the baseline being a plain SQL read of the same rows "
    "(all of them, or the last month's). The review\n  of a month also reads its 24-month "
    "history, so it reads up to 24x the rows it evaluates."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--measures", type=int, default=50)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the import and the last month's review; print the top entries",
    )
    args = parser.parse_args(argv)

    logging.getLogger("alembic").setLevel(logging.WARNING)
    result, profile_text = run(
        args.db, args.units, args.measures, args.months, args.seed, profile=args.profile
    )
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
