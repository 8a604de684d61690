"""Pure rule functions: RAG, month counts, finance thresholds, SPC and forecast.

Each function works on the dataclasses of :mod:`workflow_app.evaluation.model` and names the
rule it implements. Thresholds that frameworks set (finance limits, month counts in trigger
conditions) are passed in from the framework file; the defaults here are the conventions of
the source documents (seed 002 "Performance Improvement" month counts; NHS England / NHS
Improvement "Making Data Count" SPC rules) and are only used when nothing is passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TypeVar

from .model import (
    AmberRule,
    FinancePoint,
    FinanceSignal,
    Forecast,
    ForecastPoint,
    MeasureInput,
    MonthCount,
    MonthPoint,
    Rag,
    SpcResult,
    SpcSignal,
)
from .text import month_label

__all__ = [
    "DEFAULT_AMBER_RULE",
    "MONTH_COUNT_STATUSES",
    "MonthCountRules",
    "SpcRules",
    "add_months",
    "data_quality_warnings",
    "finance_signals",
    "forecast",
    "improvement_since",
    "meets_target",
    "meets_trajectory",
    "month_count",
    "month_start",
    "months_between",
    "rag",
    "spc",
    "timeline",
    "within_tolerance",
]

#: DOMAIN.md decision 3 says "the framework says which" amber test counts. None of the bundled
#: framework files says so (the file format has no key for it), so the engine defaults to
#: "either": a missed month is amber when its trajectory value is met OR it is within the
#: measure's tolerance of target. ``amber_rule`` can be passed to ``evaluate_unit``.
DEFAULT_AMBER_RULE: AmberRule = "either"

#: Month-count statuses, lowest first (seed 002, "Performance Improvement").
MONTH_COUNT_STATUSES: tuple[str, ...] = (
    "no_data",
    "performing",
    "monitor",
    "improvement_plan",
    "first_level",
    "second_level",
)

# Comparisons of a shortfall with a tolerance allow for binary floating point (85 - 84.99
# is not exactly 0.01); target and finance comparisons are exact.
_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Months
# --------------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    """The first of ``day``'s month."""
    return day if day.day == 1 and type(day) is date else date(day.year, day.month, 1)


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


def add_months(day: date, months: int) -> date:
    """First of the month ``months`` after (or before) ``day``'s month."""
    index = _index(day) + months
    return date(index // 12, index % 12 + 1, 1)


def months_between(start: date, end: date) -> int:
    """Whole months from ``start``'s month to ``end``'s month (Jul -> Oct = 3)."""
    return _index(end) - _index(start)


# --------------------------------------------------------------------------------------------
# Memo: a measure's timeline, SPC chart and forecast are asked for several times while a unit
# is evaluated (RAG, month counts, signals). The inputs are frozen, so inside
# ``memoized()`` (evaluate_unit) each is worked out once per measure and arguments.
# --------------------------------------------------------------------------------------------

_memo: ContextVar[dict | None] = ContextVar("evaluation_memo", default=None)
_T = TypeVar("_T")


@contextmanager
def memoized() -> Iterator[None]:
    """Within the block, per-measure results are computed once (see above)."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def _own(measure: MeasureInput) -> dict | None:
    """The measure's memo inside ``memoized()`` (None outside): one dict per measure, so a
    look-up is one ``id()`` and one small dict, not a tuple key per call."""
    memo = _memo.get()
    if memo is None:
        return None
    entry = memo.get(id(measure))
    if entry is None or entry[0] is not measure:  # the memo holds the measure: ids stay unique
        entry = memo[id(measure)] = (measure, {})
    return entry[1]


def _remember(name: str, measure: MeasureInput, args: tuple, compute: Callable[[], _T]) -> _T:
    own = _own(measure)
    if own is None:
        return compute()
    key = (name, args)
    if key in own:
        return own[key]
    value = own[key] = compute()
    return value


@lru_cache(maxsize=4096)
def _month_run(start: date, count: int) -> tuple[date, ...]:
    """``count`` consecutive months from ``start``."""
    index = _index(start)
    return tuple(date((index + i) // 12, (index + i) % 12 + 1, 1) for i in range(count))


def _points(measure: MeasureInput) -> dict[date, MonthPoint]:
    """Series by month (the last point given for a month wins). Callers only read it."""
    own = _own(measure)
    if own is not None:
        hit = own.get("points")
        if hit is not None:
            return hit
    out: dict[date, MonthPoint] = {}
    for point in measure.series:
        period = point.period
        # month_start, inline: it runs for every point of every measure
        if period.day != 1 or type(period) is not date:
            period = date(period.year, period.month, 1)
        out[period] = point
    if own is not None:
        own["points"] = out
    return out


def _timeline(measure: MeasureInput, upto: date) -> tuple[tuple[date, MonthPoint | None], ...]:
    own = _own(measure)
    key = ("timeline", upto)
    if own is not None and key in own:
        return own[key]
    points = _points(measure)
    first = None
    for p, pt in points.items():
        if pt.actual is not None and p <= upto and (first is None or p < first):
            first = p
    if first is None:
        value: tuple = ()
    else:
        get = points.get
        value = tuple((p, get(p)) for p in _month_run(first, months_between(first, upto) + 1))
    if own is not None:
        own[key] = value
    return value


def timeline(measure: MeasureInput, upto: date) -> list[tuple[date, MonthPoint | None]]:
    """Every month from the first month with an actual up to ``upto`` (inclusive), with its
    point, or ``None`` for a month absent from the series. Empty when there is no data."""
    return list(_timeline(measure, month_start(upto)))


def _observed(measure: MeasureInput, upto: date) -> list[tuple[date, float]]:
    """(month, actual) for months up to ``upto`` that have data, oldest first."""
    return list(_observed_t(measure, month_start(upto)))


def _observed_t(measure: MeasureInput, upto: date) -> tuple[tuple[date, float], ...]:
    """:func:`_observed` as the remembered tuple (callers only read it)."""
    own = _own(measure)
    key = ("observed", upto)
    if own is not None and key in own:
        return own[key]
    value = tuple(
        (p, float(pt.actual))
        for p, pt in _timeline(measure, upto)
        if pt is not None and pt.actual is not None
    )
    if own is not None:
        own[key] = value
    return value


# --------------------------------------------------------------------------------------------
# RAG (DOMAIN.md decision 3; seed 001 section 8)
# --------------------------------------------------------------------------------------------


def _at_least_as_good(measure: MeasureInput, value: float, bar: float) -> bool:
    return value >= bar if measure.higher_is_better else value <= bar


def meets_target(measure: MeasureInput, value: float) -> bool:
    """Green test: the target is met (``>=`` when higher is better, ``<=`` when lower is).
    A value exactly on target meets it."""
    return _at_least_as_good(measure, value, measure.target)


def meets_trajectory(measure: MeasureInput, point: MonthPoint) -> bool | None:
    """Whether the month's actual meets the month's trajectory value; ``None`` when either is
    missing."""
    if point.actual is None or point.trajectory is None:
        return None
    return _at_least_as_good(measure, point.actual, point.trajectory)


def within_tolerance(measure: MeasureInput, value: float) -> bool:
    """Whether a value misses the target by no more than the measure's (absolute) tolerance;
    False when the measure has no tolerance."""
    if measure.tolerance is None:
        return False
    shortfall = abs(value - measure.target)
    return shortfall <= measure.tolerance + _EPS * max(1.0, abs(measure.target))


def rag(
    measure: MeasureInput, point: MonthPoint, amber_rule: AmberRule = DEFAULT_AMBER_RULE
) -> Rag | None:
    """RAG of one measure-month (DOMAIN.md decision 3; seed 001 section 8).

    Green: target met. Amber: target missed but, as ``amber_rule`` says, the month's trajectory
    value met (``trajectory``), or within the measure's tolerance of target (``tolerance``), or
    either (``either``). Red: target missed and the amber test fails. ``None`` for a month with
    no actual (a gap month has no colour).
    """
    if point.actual is None:
        return None
    value = float(point.actual)
    target = measure.target
    if value >= target if measure.direction == "higher_is_better" else value <= target:
        return "green"  # meets_target, inline: rag runs for every measure-month
    on_trajectory = bool(meets_trajectory(measure, point))
    in_tolerance = within_tolerance(measure, value)
    if amber_rule == "trajectory":
        amber = on_trajectory
    elif amber_rule == "tolerance":
        amber = in_tolerance
    else:
        amber = on_trajectory or in_tolerance
    return "amber" if amber else "red"


# --------------------------------------------------------------------------------------------
# Month counts (seed 002 "Performance Improvement"; DOMAIN.md decision 4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthCountRules:
    """Month counts of seed 002 "Performance Improvement": 1 month under -> monitor; 2 months
    (or failure predicted within the next quarter) -> improvement plan; 3 months without
    improvement since the plan -> 1st-level escalation; continued failure -> 2nd level.

    Decision: "continued failure" is read as a further ``escalate_months`` without improvement
    after the 1st-level escalation, i.e. ``second_level_months`` = 6 months since the plan.
    """

    monitor_months: int = 1
    plan_months: int = 2
    escalate_months: int = 3
    second_level_months: int = 6
    forecast_horizon: int = 3


def improvement_since(measure: MeasureInput, since: date, upto: date) -> dict[str, object]:
    """DOMAIN.md decision 4, "improvement since the plan": the measure meets the plan's
    trajectory (its latest month with data after ``since`` meets that month's trajectory
    value), or its mean over the months after ``since``'s month beats its mean over the same
    number of months up to and including ``since``'s month (months with data only; "beats" is
    strictly better in the measure's direction).

    Returns ``{"improved": bool | None, "months_since": [...], "months_before": [...],
    "mean_since": float | None, "mean_before": float | None, "trajectory_met": bool | None}``;
    ``improved`` is ``None`` when no month with data follows ``since``.
    """
    since = month_start(since)
    observed = _observed(measure, upto)
    after = [(p, v) for p, v in observed if p > since]
    before_all = [(p, v) for p, v in observed if p <= since]
    result: dict[str, object] = {
        "improved": None,
        "months_since": after,
        "months_before": [],
        "mean_since": None,
        "mean_before": None,
        "trajectory_met": None,
    }
    if not after:
        return result
    points = _points(measure)
    latest = points[after[-1][0]]
    trajectory_met = meets_trajectory(measure, latest)
    before = before_all[-len(after) :] if before_all else []
    mean_since = sum(v for _, v in after) / len(after)
    mean_before = sum(v for _, v in before) / len(before) if before else None
    beats = mean_before is not None and (
        mean_since > mean_before if measure.higher_is_better else mean_since < mean_before
    )
    result.update(
        improved=bool(trajectory_met) or beats,
        months_before=before,
        mean_since=mean_since,
        mean_before=mean_before,
        trajectory_met=trajectory_met,
    )
    return result


def month_count(
    measure: MeasureInput,
    upto: date,
    plan_approved_on: date | None = None,
    *,
    rules: MonthCountRules | None = None,
) -> MonthCount:
    """Month-count position of a measure at ``upto`` (seed 002 "Performance Improvement";
    DOMAIN.md decision 4).

    "Under" means the target is missed that month. Months are counted consecutively back
    from ``upto``; a month with no data neither counts nor breaks the run (and is listed in
    ``missing_periods``); the count restarts when the target is met. The status is
    ``performing`` (0 months under), ``monitor`` (1), ``improvement_plan`` (2, or a failure
    forecast within ``forecast_horizon`` months), ``first_level`` (``escalate_months`` months
    after the plan's approval without improvement) and ``second_level`` (continued failure,
    ``second_level_months`` without improvement).
    """
    rules = rules or MonthCountRules()
    upto = month_start(upto)
    months = _timeline(measure, upto)  # read only: no copy
    if not months:
        return MonthCount(status="no_data", consecutive_under=0)
    missing: list[date] = []
    under: list[date] = []
    met = 0
    target, higher = measure.target, measure.higher_is_better
    for period, point in months:
        if point is None or point.actual is None:
            missing.append(period)
            continue
        value = float(point.actual)
        if value >= target if higher else value <= target:  # meets_target, inline
            under = []
            met += 1
        else:
            under.append(period)
            met = 0
    consecutive = len(under)
    projection = forecast(measure, upto, horizon=rules.forecast_horizon)
    forecast_fails = bool(projection and projection.fails)

    improved: bool | None = None
    without = 0
    if plan_approved_on is not None and month_start(plan_approved_on) <= upto:
        test = improvement_since(measure, plan_approved_on, upto)
        improved = test["improved"]  # type: ignore[assignment]
        if improved is False and consecutive > 0:
            without = len(test["months_since"])  # type: ignore[arg-type]

    if consecutive == 0:
        status = "performing"
    elif consecutive >= rules.plan_months:
        status = "improvement_plan"
    else:
        status = "monitor" if consecutive >= rules.monitor_months else "performing"
    if forecast_fails and _rank(status) < _rank("improvement_plan"):
        status = "improvement_plan"
    if without >= rules.second_level_months:
        status = "second_level"
    elif without >= rules.escalate_months:
        status = "first_level"
    return MonthCount(
        status=status,
        consecutive_under=consecutive,
        missing_periods=tuple(missing),
        improvement_since_plan=improved,
        forecast_fails=forecast_fails,
        under_periods=tuple(under),
        consecutive_met=met,
        months_without_improvement=without,
    )


def _rank(status: str) -> int:
    return MONTH_COUNT_STATUSES.index(status)


def data_quality_warnings(measure: MeasureInput, upto: date) -> tuple[str, ...]:
    """Gap months (DOMAIN.md decision 4; seed 001 appendix 6, completeness) up to ``upto``."""
    upto = month_start(upto)
    months = timeline(measure, upto)
    if not months:
        return (f"{measure.name} ({measure.code}): no data up to {month_label(upto, True)}.",)
    out = []
    for period, point in months:
        if point is None or point.actual is None:
            out.append(
                f"{measure.name} ({measure.code}): no data for {month_label(period, True)}; "
                "the month is neither counted nor breaks the run."
            )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Finance (seed 000 7.8 table, Level 2b; DOMAIN.md decision 5)
# --------------------------------------------------------------------------------------------


def finance_signals(
    points: Iterable[FinancePoint], period: date, thresholds: Mapping[str, float]
) -> tuple[FinanceSignal, ...]:
    """Finance thresholds crossed in ``period``'s return (seed 000 7.8, Level 2b: "overspend
    > £0.5m year to date or > £1m forecast"; DOMAIN.md decision 5: positive variance =
    overspend).

    ``thresholds`` maps ``ytd_overspend`` / ``forecast_overspend`` to the framework's
    ``greater_than`` value. The comparison is strict: exactly the threshold is not "more
    than" it; an underspend (negative variance) never signals. No return for the period, no
    signal.
    """
    period = month_start(period)
    current = None
    for point in points:
        if month_start(point.period) == period:
            current = point
    if current is None:
        return ()
    out = []
    for kind, value in (
        ("ytd_overspend", current.ytd_variance),
        ("forecast_overspend", current.forecast_variance),
    ):
        threshold = thresholds.get(kind)
        if threshold is None:
            continue
        if float(value) > 0 and float(value) > float(threshold):
            out.append(FinanceSignal(kind, period, float(value), float(threshold)))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# SPC (NHS England / NHS Improvement "Making Data Count": XmR charts)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpcRules:
    """The Making Data Count rules for an XmR chart.

    Limits: mean +/- 2.66 x the average moving range (3 sigma, sigma = mR-bar / 1.128).
    Signals: a point beyond the limits; a shift of ``shift_length`` (7) or more consecutive
    points on one side of the mean; a trend of ``trend_length`` (6) or more consecutive points
    all rising or all falling; 2 of 3 consecutive points beyond 2 sigma on the same side.

    Decisions: a point exactly on the mean breaks a shift, and an unchanged value breaks a
    trend; gap months are skipped (the chart runs over the months with data); limits are
    computed from every month with data up to the evaluated period (no frozen baseline); a
    chart needs ``min_points`` months with data.
    """

    limit_factor: float = 2.66
    sigma_divisor: float = 1.128
    shift_length: int = 7
    trend_length: int = 6
    min_points: int = 3


def _kind(measure: MeasureInput, high: bool) -> str:
    return "improvement" if high == measure.higher_is_better else "concern"


def spc(
    measure: MeasureInput, upto: date | None = None, rules: SpcRules | None = None
) -> SpcResult | None:
    """XmR chart and Making Data Count signals of a measure up to ``upto`` (default: its last
    month). Signals are direction-aware: a high point, shift or rising trend is an
    *improvement* when higher is better and a *concern* when lower is better (and vice versa).
    ``None`` when fewer than ``rules.min_points`` months have data.
    """
    rules = rules or SpcRules()
    if upto is None:
        months = [month_start(p.period) for p in measure.series if p.actual is not None]
        if not months:
            return None
        upto = max(months)
    upto = month_start(upto)
    return _remember("spc", measure, (upto, rules), lambda: _spc(measure, upto, rules))


def _spc(measure: MeasureInput, upto: date, rules: SpcRules) -> SpcResult | None:
    data = _observed_t(measure, upto)
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
    # Runs are scanned as [start, end) index ranges; each rule as Making Data Count states it.

    # 1. A point beyond the process limits.
    if mr_bar > 0:
        for period, value in data:
            if value > ucl or value < lcl:
                high = value > ucl
                signals.append(
                    SpcSignal(
                        "beyond_limits", (period,), _kind(measure, high), "high" if high else "low"
                    )  # type: ignore[arg-type]
                )

    # 2. A shift: a run of shift_length or more on one side of the mean.
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

    # 3. A trend: trend_length or more points each higher (lower) than the one before.
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

    # 4. Two of three consecutive points beyond 2 sigma on the same side (overlapping
    #    windows merged into one signal).
    if sigma > 0:
        upper, lower = mean + 2 * sigma, mean - 2 * sigma
        for high in (True, False):
            near = [(v > upper) if high else (v < lower) for v in values]
            if sum(near) < 2:
                continue  # no window can hold two
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
    return SpcResult(
        mean=mean,
        ucl=ucl,
        lcl=lcl,
        signals=tuple(signals),
        mr_bar=mr_bar,
        periods=tuple(periods),
    )


# --------------------------------------------------------------------------------------------
# Forecast (seed 002 "Performance Improvement": "failure predicted within the next quarter";
# "proactive forward look for the next 3 months")
# --------------------------------------------------------------------------------------------


def _linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def forecast(
    measure: MeasureInput,
    upto: date,
    horizon: int = 3,
    *,
    window: int = 6,
    min_points: int = 3,
) -> Forecast | None:
    """Project the measure ``horizon`` months beyond ``upto`` with a least-squares linear
    trend on its last ``window`` (6) months with data (gap months keep their place on the time
    axis). Each projected month is compared with that month's trajectory value when the
    series carries one, else with the target; ``Forecast.fails`` is True when any projected
    month misses it. ``None`` with fewer than ``min_points`` months of data.
    """
    upto = month_start(upto)
    return _remember(
        "forecast",
        measure,
        (upto, horizon, window, min_points),
        lambda: _forecast(measure, upto, horizon, window, min_points),
    )


def _forecast(
    measure: MeasureInput, upto: date, horizon: int, window: int, min_points: int
) -> Forecast | None:
    data = _observed_t(measure, upto)[-window:]
    if len(data) < min_points:
        return None
    origin = _index(data[0][0])
    xs = [float(_index(p) - origin) for p, _ in data]
    slope, intercept = _linear_fit(xs, [v for _, v in data])
    points = _points(measure)
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
        fails = not _at_least_as_good(measure, value + 0.0, bar) and not math.isclose(
            value, bar, rel_tol=_EPS, abs_tol=_EPS
        )
        out.append(ForecastPoint(period, value, bar, bar_kind, fails))  # type: ignore[arg-type]
    return Forecast(points=tuple(out), slope=slope, basis=tuple(p for p, _ in data))
