"""Reviewing a run of months (``review_months``: a backfill, or the re-review after a
revision) reads the measures' values once for the span instead of a 24-month window per
month; what it evaluates and stores must be exactly what ``run_review`` gives month by month.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from workflow_app.demo import load_demo
from workflow_app.extensions import db
from workflow_app.models.cases import Decision
from workflow_app.models.org import Unit
from workflow_app.services.review import (
    HISTORY_MONTHS,
    SeriesSpan,
    _months_back,
    _series_span,
    review_months,
    run_review,
    unit_inputs,
)

TODAY = date(2026, 11, 23)


def months(first: date, last: date) -> list[date]:
    out = [first]
    while out[-1] < last:
        out.append(_months_back(out[-1], -1))
    return out


def summary(outcome) -> tuple:
    """What a month's review decided, without ids the two runs number differently."""
    return (
        outcome.period,
        outcome.units,
        outcome.unchanged,
        len(outcome.superseded),
        sorted(
            (d.case.unit.code, d.case.track, d.from_level, d.to_level, d.rule_id, d.fingerprint)
            for d in outcome.created
        ),
    )


def test_inputs_cut_from_a_span_equal_the_inputs_read_month_by_month(app):
    load_demo(today=TODAY)
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    periods = months(date(2024, 11, 1), date(2026, 10, 1))
    span = SeriesSpan.read(
        [u.id for u in units], _months_back(periods[0], HISTORY_MONTHS - 1), periods[-1]
    )
    checked_plans = False
    for period in periods:
        expected = unit_inputs(units, period)
        token = _series_span.set(span)
        try:
            cut = unit_inputs(units, period)
        finally:
            _series_span.reset(token)
        assert cut == expected, period
        checked_plans = checked_plans or any(i.plans for i in cut.values())
    assert checked_plans, "the demo's plans (planned values as trajectory) are covered"


def test_a_span_that_does_not_cover_the_units_or_months_is_not_used(app):
    load_demo(today=TODAY)
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    period = date(2026, 10, 1)
    expected = unit_inputs(units, period)
    # A span of other values: used, it would give other inputs.
    too_short = SeriesSpan.read([u.id for u in units], date(2026, 9, 1), period)
    too_few = SeriesSpan.read([units[0].id], _months_back(period, HISTORY_MONTHS - 1), period)
    for span in (too_short, too_few):
        assert not span.covers([u.id for u in units], months(date(2024, 11, 1), period))
        token = _series_span.set(span)
        try:
            assert unit_inputs(units, period) == expected
        finally:
            _series_span.reset(token)


def test_reviewing_a_run_of_months_stores_what_reviewing_each_month_stores(app):
    load_demo(today=TODAY)
    db.session.commit()
    # The demo reviewed neither its first six months nor the latest, so those make new
    # proposals; the months between are reviewed again (unchanged, or superseded).
    periods = months(date(2025, 11, 1), date(2026, 10, 1))
    together = []
    for outcome in review_months(periods):
        together.append(summary(outcome))
        assert outcome.evaluations == []  # a run keeps what it stored, not the evaluations
    stored_together = db.session.scalar(sa.select(sa.func.count(Decision.id)))
    db.session.rollback()
    one_by_one = [summary(run_review(period)) for period in periods]
    stored_one_by_one = db.session.scalar(sa.select(sa.func.count(Decision.id)))
    db.session.rollback()
    assert together == one_by_one
    assert stored_together == stored_one_by_one
    assert any(created for *_, created in together), "some month makes new proposals"


def test_the_span_is_read_once_not_once_a_month(app):
    load_demo(today=TODAY)
    db.session.commit()
    reads = []

    def count(conn, cursor, statement, *args):
        if "FROM monthly_actuals" in statement:
            reads.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        outcomes = list(review_months(months(date(2026, 1, 1), date(2026, 10, 1))))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    db.session.rollback()
    assert len(outcomes) == 10
    # The span's one read of every unit's values, where month by month there would be ten
    # (a plan's measures are still read on their own, for its months since approval).
    window_reads = [s for s in reads if "JOIN measures ON" in s]
    assert len(window_reads) == 1, window_reads


def test_cli_reviews_a_run_of_months_in_order_and_refuses_a_backward_range(app):
    from workflow_app.cli.review import review_cli

    load_demo(today=TODAY)
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(review_cli, ["run", "--month", "2025-11", "--through", "2026-02"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Reviewed")]
    assert [line.split(":")[0] for line in lines] == [
        "Reviewed November 2025",
        "Reviewed December 2025",
        "Reviewed January 2026",
        "Reviewed February 2026",
    ]
    before = db.session.scalar(sa.select(sa.func.count(Decision.id)))
    backward = runner.invoke(review_cli, ["run", "--month", "2026-02", "--through", "2025-11"])
    assert backward.exit_code != 0 and "must not be before --month" in backward.output
    assert db.session.scalar(sa.select(sa.func.count(Decision.id))) == before
