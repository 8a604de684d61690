"""The fast paths of the rules give exactly what the straightforward versions give.

The reference functions below are the rules as first written (one pass per rule, lists,
``_linear_fit`` on every call); the engine now takes shortcuts for the common case (no gap
month, no signal, the same x axis). Results are compared with ``==`` and ``repr`` (floats
bit for bit), inside and outside ``memoized()``.
"""

from __future__ import annotations

import math
from datetime import date

from hypothesis import example, given
from hypothesis import strategies as st

from workflow_app.evaluation import (
    Forecast,
    ForecastPoint,
    MeasureInput,
    MonthPoint,
    SpcResult,
    SpcRules,
    SpcSignal,
    data_quality_warnings,
    forecast,
    improvement_since,
    month_count,
    rag,
    spc,
)
from workflow_app.evaluation.rules import (
    _own,
    _rags,
    add_months,
    may_end_in_run,
    memoized,
    month_start,
    timeline,
)
from workflow_app.evaluation.triggers import _bar_miss_run

START = date(2025, 1, 1)
UPTO = date(2026, 6, 1)


# --------------------------------------------------------------------------------------------
# Reference versions (as first written)
# --------------------------------------------------------------------------------------------


def _ref_timeline(measure: MeasureInput, upto: date) -> list[tuple[date, MonthPoint | None]]:
    points = {month_start(p.period): p for p in measure.series}
    months = [p for p, pt in points.items() if pt.actual is not None and p <= upto]
    if not months:
        return []
    first = min(months)
    out = []
    period = first
    while period <= upto:
        out.append((period, points.get(period)))
        period = add_months(period, 1)
    return out


def _ref_observed(measure: MeasureInput, upto: date) -> list[tuple[date, float]]:
    return [
        (p, float(pt.actual))
        for p, pt in _ref_timeline(measure, upto)
        if pt is not None and pt.actual is not None
    ]


def _kind(measure: MeasureInput, high: bool) -> str:
    return "improvement" if high == measure.higher_is_better else "concern"


def _ref_spc(measure: MeasureInput, upto: date, rules: SpcRules) -> SpcResult | None:
    data = _ref_observed(measure, upto)
    if len(data) < rules.min_points:
        return None
    periods = [p for p, _ in data]
    values = [v for _, v in data]
    mean = sum(values) / len(values)
    ranges = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    mr_bar = sum(ranges) / len(ranges)
    ucl = mean + rules.limit_factor * mr_bar
    lcl = mean - rules.limit_factor * mr_bar
    sigma = mr_bar / rules.sigma_divisor
    signals: list[SpcSignal] = []
    n = len(values)
    if mr_bar > 0:
        for period, value in data:
            if value > ucl or value < lcl:
                high = value > ucl
                signals.append(
                    SpcSignal(
                        "beyond_limits", (period,), _kind(measure, high), "high" if high else "low"
                    )  # type: ignore[arg-type]
                )
    for high in (True, False):
        length = 0
        for i in range(n + 1):
            if i < n and (values[i] > mean if high else values[i] < mean):
                length += 1
                continue
            if length >= rules.shift_length and length:
                signals.append(
                    SpcSignal(
                        "shift",
                        tuple(periods[i - length : i]),
                        _kind(measure, high),  # type: ignore[arg-type]
                        "high" if high else "low",
                    )
                )
            length = 0
    for rising in (True, False):
        first = 0
        for i in range(1, n + 1):
            if i < n and (values[i] > values[i - 1] if rising else values[i] < values[i - 1]):
                continue
            if i - first >= rules.trend_length:
                signals.append(
                    SpcSignal(
                        "trend",
                        tuple(periods[first:i]),
                        _kind(measure, rising),  # type: ignore[arg-type]
                        "rising" if rising else "falling",
                    )
                )
            first = i
    if sigma > 0:
        upper, lower = mean + 2 * sigma, mean - 2 * sigma
        for high in (True, False):
            near = [(v > upper) if high else (v < lower) for v in values]
            if sum(near) < 2:
                continue
            flagged: list[set[int]] = []
            for start in range(n - 2):
                window = [i for i in range(start, start + 3) if near[i]]
                if len(window) >= 2:
                    if flagged and min(window) <= max(flagged[-1]) + 2:
                        flagged[-1].update(window)
                    else:
                        flagged.append(set(window))
            for group in flagged:
                signals.append(
                    SpcSignal(
                        "two_of_three",
                        tuple(periods[i] for i in sorted(group)),
                        _kind(measure, high),  # type: ignore[arg-type]
                        "high" if high else "low",
                    )
                )
    signals.sort(key=lambda s: (s.periods[0], s.rule, s.side))
    return SpcResult(mean, ucl, lcl, tuple(signals), mr_bar, tuple(periods))


def _ref_linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _ref_forecast(
    measure: MeasureInput, upto: date, horizon: int, window: int, min_points: int
) -> Forecast | None:
    data = _ref_observed(measure, upto)[-window:]
    if len(data) < min_points:
        return None
    origin = _index(data[0][0])
    xs = [float(_index(p) - origin) for p, _ in data]
    slope, intercept = _ref_linear_fit(xs, [v for _, v in data])
    points = {month_start(p.period): p for p in measure.series}
    out = []
    for step in range(1, horizon + 1):
        period = add_months(upto, step)
        value = intercept + slope * (_index(period) - origin)
        if not math.isfinite(value):
            continue
        planned = points.get(period)
        if planned is not None and planned.trajectory is not None:
            bar, bar_kind = float(planned.trajectory), "trajectory"
        else:
            bar, bar_kind = float(measure.target), "target"
        good = value + 0.0 >= bar if measure.higher_is_better else value + 0.0 <= bar
        fails = not good and not math.isclose(value, bar, rel_tol=1e-9, abs_tol=1e-9)
        out.append(ForecastPoint(period, value, bar, bar_kind, fails))  # type: ignore[arg-type]
    return Forecast(tuple(out), slope, tuple(p for p, _ in data))


def _ref_runs(measure: MeasureInput, upto: date) -> tuple[list[date], list[date], int]:
    """missing_periods, under_periods and consecutive_met of month_count."""
    missing: list[date] = []
    under: list[date] = []
    met = 0
    for period, point in _ref_timeline(measure, upto):
        if point is None or point.actual is None:
            missing.append(period)
            continue
        value = float(point.actual)
        if value >= measure.target if measure.higher_is_better else value <= measure.target:
            under = []
            met += 1
        else:
            under.append(period)
            met = 0
    return missing, under, met


# --------------------------------------------------------------------------------------------
# Inputs: gaps, ties, unsorted and duplicate months, days other than the 1st, future points
# --------------------------------------------------------------------------------------------

_values = st.one_of(
    st.none(),
    st.sampled_from([80.0, 85.0, 90.0]),  # ties and values on target
    st.floats(min_value=50, max_value=120, allow_nan=False),
)


@st.composite
def measures(draw: st.DrawFn) -> MeasureInput:
    count = draw(st.integers(min_value=0, max_value=26))
    values = draw(st.lists(_values, min_size=count, max_size=count))
    with_trajectory = draw(st.booleans())
    points = []
    for i, value in enumerate(values):
        period = add_months(START, i)
        if draw(st.integers(0, 9)) == 0:
            period = period.replace(day=15)  # not the 1st: counted as its month
        trajectory = draw(st.sampled_from([None, 84.0, 86.0])) if with_trajectory else None
        points.append(MonthPoint(period, value, trajectory))
    if points and draw(st.booleans()):
        points.append(MonthPoint(add_months(UPTO, 2), None, 88.0))  # a future trajectory
    if len(points) > 2 and draw(st.integers(0, 4)) == 0:
        points.append(points[draw(st.integers(0, len(points) - 1))])  # a month given twice
    if draw(st.integers(0, 4)) == 0:
        points.reverse()
    return _measure(draw, tuple(points))


def _measure(draw: st.DrawFn, series: tuple[MonthPoint, ...]) -> MeasureInput:
    """A measure of target 85 with ``series``, its direction and tolerance drawn."""
    return MeasureInput(
        code="M1",
        name="A measure",
        domain="access_activity",
        kind="key_deliverable",
        target=85.0,
        direction=draw(st.sampled_from(["higher_is_better", "lower_is_better"])),
        tolerance=draw(st.sampled_from([None, 2.0, 5.0])),
        series=series,
    )


@st.composite
def review_windows(draw: st.DrawFn) -> tuple[MeasureInput, date]:
    """The shape the monthly review gives (and the fast paths take): consecutive months
    ending at the month evaluated, every one with an actual; with the month evaluated."""
    count = draw(st.integers(min_value=1, max_value=26))
    values = draw(st.lists(_values.filter(lambda v: v is not None), min_size=count, max_size=count))
    with_trajectory = draw(st.booleans())
    points = tuple(
        MonthPoint(
            add_months(START, i),
            value,
            draw(st.sampled_from([None, 84.0, 86.0])) if with_trajectory else None,
        )
        for i, value in enumerate(values)
    )
    return _measure(draw, points), points[-1].period


_upto = st.sampled_from([add_months(START, k) for k in range(0, 26, 3)] + [UPTO])
#: Any measure with any month evaluated, or the review's shape.
_cases = st.one_of(st.tuples(measures(), _upto), review_windows())
_rules = st.sampled_from(
    [
        SpcRules(),
        SpcRules(shift_length=3, trend_length=3),
        SpcRules(shift_length=1, trend_length=1, min_points=1),
        SpcRules(shift_length=0, trend_length=2, min_points=2),
    ]
)


def _both(check) -> None:  # noqa: ANN001
    """Run ``check`` outside and inside the memo (twice inside: computed, then remembered)."""
    check()
    with memoized():
        check()
        check()


def _alternating(bumps: dict[int, float]) -> tuple[MeasureInput, date]:
    """24 months alternating 85 and 86, with ``bumps`` added: a chart whose signals are known."""
    values = [(85.0, 86.0)[i % 2] + bumps.get(i, 0.0) for i in range(24)]
    points = tuple(MonthPoint(add_months(START, i), v) for i, v in enumerate(values))
    measure = MeasureInput(
        code="M1",
        name="A measure",
        domain="access_activity",
        kind="key_deliverable",
        target=85.0,
        direction="higher_is_better",
        series=points,
    )
    return measure, points[-1].period


@given(_cases, _rules)
@example(_alternating({0: 3.0, 2: 3.0}), SpcRules())  # two of three, one month apart
@example(_alternating({0: 3.5, 2: 3.5, 4: 3.5}), SpcRules())  # a chain of them: one signal
def test_spc_is_the_reference(case: tuple[MeasureInput, date], rules: SpcRules) -> None:
    measure, upto = case
    expected = _outcome(lambda: _ref_spc(measure, upto, rules))
    _both(lambda: _eq(_outcome(lambda: spc(measure, upto, rules)), expected))


@given(_cases, st.integers(1, 4), st.integers(0, 8), st.integers(1, 4))
def test_forecast_is_the_reference(
    case: tuple[MeasureInput, date], horizon: int, window: int, min_points: int
) -> None:
    measure, upto = case
    expected = repr(_ref_forecast(measure, upto, horizon, window, min_points))

    def check() -> None:
        got = forecast(measure, upto, horizon, window=window, min_points=min_points)
        _eq(repr(got), expected)

    _both(check)


@given(_cases, st.sampled_from([None, date(2025, 6, 1), date(2026, 3, 1)]))
def test_month_count_runs_are_the_reference(
    case: tuple[MeasureInput, date], plan: date | None
) -> None:
    measure, upto = case
    missing, under, met = _ref_runs(measure, upto)

    def check() -> None:
        count = month_count(measure, upto, plan)
        if count.status == "no_data":
            assert not _ref_timeline(measure, upto)
            return
        _eq(
            (count.missing_periods, count.under_periods, count.consecutive_met),
            (
                tuple(missing),
                tuple(under),
                met,
            ),
        )

    _both(check)


@given(measures(), _upto, st.sampled_from([date(2025, 3, 1), date(2025, 9, 1), UPTO]))
def test_improvement_since_is_the_reference(measure: MeasureInput, upto: date, since: date) -> None:
    observed = _ref_observed(measure, upto)
    after = [(p, v) for p, v in observed if p > since]
    before = [(p, v) for p, v in observed if p <= since][-len(after) :] if after else []

    def check() -> None:
        test = improvement_since(measure, since, upto)
        _eq(test["months_since"], after)
        if after:
            _eq(test["months_before"], before)
            _eq(repr(test["mean_since"]), repr(sum(v for _, v in after) / len(after)))

    _both(check)


@given(_cases)
def test_timeline_and_warnings_are_the_reference(case: tuple[MeasureInput, date]) -> None:
    measure, upto = case
    expected = _ref_timeline(measure, upto)
    gaps = [p for p, pt in expected if pt is None or pt.actual is None]

    def check() -> None:
        _eq(timeline(measure, upto), expected)
        warnings = data_quality_warnings(measure, upto)
        _eq(len(warnings), len(gaps) if expected else 1)

    _both(check)


@given(_cases, st.sampled_from(["trajectory", "tolerance", "either"]))
def test_rags_are_rag_of_each_month(case: tuple[MeasureInput, date], rule: str) -> None:
    measure, upto = case
    expected = {
        p: (None if pt is None else rag(measure, pt, rule))  # type: ignore[arg-type]
        for p, pt in _ref_timeline(measure, upto)
    }
    _eq(_rags(measure, upto, rule, None), expected)  # type: ignore[arg-type]
    with memoized():
        _eq(_rags(measure, upto, rule, None), expected)  # type: ignore[arg-type]
        # with the measure's memo, as the evaluation calls it (the timeline's fast path)
        _eq(_rags(measure, upto, rule, _own(measure)), expected)  # type: ignore[arg-type]
        _eq(_rags(measure, upto, rule, _own(measure)), expected)  # type: ignore[arg-type]


@given(measures(), _upto, st.sampled_from([None, date(2025, 3, 1), date(2025, 9, 1), UPTO]))
def test_bar_miss_run_is_the_reference(
    measure: MeasureInput, upto: date, after: date | None
) -> None:
    expected: list[date] = []
    for period, point in _ref_timeline(measure, upto):
        if after is not None and period <= after:
            continue
        if point is None or point.actual is None:
            continue
        bar = measure.target if point.trajectory is None else point.trajectory
        value = float(point.actual)
        if value >= bar if measure.higher_is_better else value <= bar:
            expected = []
        else:
            expected.append(period)
    _both(lambda: _eq(_bar_miss_run(measure, upto, after), expected))


def _outcome(compute) -> str:  # noqa: ANN001
    """The result's repr, or the exception's name (one point and min_points=1: 0 / 0)."""
    try:
        return repr(compute())
    except ZeroDivisionError as error:
        return type(error).__name__


def _eq(got: object, expected: object) -> None:
    assert got == expected, (got, expected)


@given(_cases, _rules)
@example(_alternating({i: 2.0 for i in range(17, 24)}), SpcRules())  # a shift to the end
@example(_alternating({i: 1.2 * (i - 17) for i in range(18, 24)}), SpcRules())  # a trend too
def test_a_run_to_the_latest_month_is_never_ruled_out(
    case: tuple[MeasureInput, date], rules: SpcRules
) -> None:
    """``may_end_in_run`` (the sustained-deterioration trigger's test before the chart) is
    False only for a chart with no shift or trend ending at its latest month."""
    measure, upto = case

    def check() -> None:
        try:
            chart = spc(measure, upto, rules)
        except ZeroDivisionError:  # one point and min_points=1 (see _outcome)
            return
        ends = chart is not None and any(
            s.rule in ("shift", "trend") and s.periods[-1] == chart.periods[-1]
            for s in chart.signals
        )
        if ends:
            assert may_end_in_run(measure, upto, rules)

    _both(check)
