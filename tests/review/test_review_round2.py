"""Round 2 of decision 0035: the review's raw read of values and periods, and earned
autonomy's quick refusal, give exactly what the slower paths gave."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from state_machines import get_framework
from workflow_app.evaluation import MeasureInput, MonthPoint, UnitInput
from workflow_app.services.autonomy import _months_back, _surely_ineligible, assess_input
from workflow_app.services.review import _number, _odd_slot, _slots


def test_a_raw_value_converts_as_the_numeric_column_reads_it():
    # SQLAlchemy's Numeric(14, 4) on SQLite: Decimal("%.4f" % raw); the review takes float().
    rng = random.Random(9)
    values = [0, 93, -7, 0.1, 2.5e-5, 0.00005, 0.00015, 1e12 + 0.123456]
    values += [rng.uniform(-1e6, 1e6) for _ in range(20_000)]
    values += [round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)) for _ in range(20_000)]
    for raw in values:
        assert _number(raw) == float(Decimal(f"{raw:.4f}"))  # = "%.4f" % raw, raw
    assert _number(Decimal("81.1250")) == 81.125  # PostgreSQL gives the Decimal itself


def test_a_raw_period_finds_its_slot(app):
    months = [date(2025, 1, 1), date(2025, 2, 1)]
    slot = _slots(months)
    assert slot[date(2025, 2, 1)] == 1 and slot["2025-02-01"] == 1
    with app.app_context():
        # Another text form is parsed as SQLAlchemy's Date reads it (and fails as it does).
        with pytest.raises(ValueError, match="isoformat"):
            _odd_slot(slot, "2025-02-01 00:00:00.000000")
        assert _odd_slot(slot, "2025-02-15") is None  # not the first: never looked up
        assert _odd_slot(slot, date(2025, 3, 1)) is None


def _unit(series_by_code: dict[str, list[float | None]], period: date) -> UnitInput:
    months = [_months_back(period, n) for n in range(23, -1, -1)]
    measures = tuple(
        MeasureInput(
            code=code,
            name=code,
            domain="access_activity",
            kind="national_target",
            target=90.0,
            direction="higher_is_better",
            series=tuple(
                MonthPoint(m, v)
                for m, v in zip(months, [None] * (24 - len(vals)) + vals, strict=True)
            ),
        )
        for code, vals in series_by_code.items()
    )
    return UnitInput(
        code="U", name="U", kind="operational_directorate", framework="iqpf", measures=measures
    )


def test_the_quick_refusal_only_refuses_what_the_full_rule_refuses():
    framework = get_framework("iqpf")
    period = date(2025, 12, 1)
    rng = random.Random(3)
    seen = {True: 0, False: 0}
    for _ in range(400):
        series = {
            f"M{i}": [
                rng.choice([None, 85.0, 90.0, 95.0, 95.0, 95.0]) for _ in range(rng.randint(0, 24))
            ]
            for i in range(rng.randint(0, 3))
        }
        data = _unit(series, period)
        quick = _surely_ineligible(data, period, framework)
        full = assess_input(data, period, framework)
        seen[quick] += 1
        if quick:
            assert full.reasons, series
        elif data.measures:
            # the measures passed: any reason left is about finance or concerns, not them
            assert not any("missed its target" in r or "has no figure" in r for r in full.reasons)
    assert seen[True] and seen[False]
