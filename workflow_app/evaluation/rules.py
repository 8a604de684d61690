"""Pure rule functions: RAG, month counts, finance thresholds, SPC and forecast.

Each function works on the dataclasses of :mod:`workflow_app.evaluation.model` and names the
rule it implements. Thresholds that frameworks set (finance limits, month counts in trigger
conditions) are passed in from the framework file; the defaults here are the conventions of
the source documents (seed 002 "Performance Improvement" month counts; NHS England / NHS
Improvement "Making Data Count" SPC rules) and are only used when nothing is passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import compress, repeat
from operator import attrgetter, ge, gt, is_not, itemgetter, le, lt, mul, sub

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
    look-up is one ``id()`` and one small dict, not a tuple key per call.

    Internal helpers take this dict (``own``) as an argument, so that one public call looks
    the memo up once rather than once per helper (the look-up is a ContextVar read and a
    function call, and ran a dozen times per measure-month before)."""
    memo = _memo.get()
    if memo is None:
        return None
    entry = memo.get(id(measure))
    if entry is None or entry[0] is not measure:  # the memo holds the measure: ids stay unique
        entry = memo[id(measure)] = (measure, {})
    return entry[1]


@lru_cache(maxsize=4096)
def _month_run(start: date, count: int) -> tuple[date, ...]:
    """``count`` consecutive months from ``start``."""
    index = _index(start)
    return tuple(date((index + i) // 12, (index + i) % 12 + 1, 1) for i in range(count))


_period_of = attrgetter("period")
_actual_of = attrgetter("actual")
_day_of = attrgetter("day")


def _points(measure: MeasureInput, own: dict | None = None) -> dict[date, MonthPoint]:
    """Series by month (the last point given for a month wins). Callers only read it.
    ``own``: the measure's memo when the caller has it (else it is looked up)."""
    if own is None:
        own = _own(measure)
    if own is not None:
        hit = own.get("points")
        if hit is not None:
            return hit
    series = measure.series
    periods = list(map(_period_of, series))
    if set(map(_day_of, periods)) == {1} and set(map(type, periods)) == {date}:
        # every period is a month start already (the usual case): keyed as they are
        out = dict(zip(periods, series, strict=True))
    else:
        out = {}
        for point in series:
            period = point.period
            if period.day != 1 or type(period) is not date:
                period = date(period.year, period.month, 1)  # month_start, inline
            out[period] = point
    if own is not None:
        own["points"] = out
    return out


def _timeline(
    measure: MeasureInput, upto: date, own: dict | None = None
) -> tuple[tuple[date, MonthPoint | None], ...]:
    """:func:`timeline` as the remembered tuple (callers only read it); ``upto`` is a month
    start. Remembers :func:`_series` too when it finds no gap month (see there)."""
    if own is None:
        own = _own(measure)
    key = ("timeline", upto)
    if own is not None:
        hit = own.get(key)
        if hit is not None:
            return hit
    series = measure.series
    if own is not None and series and series[-1].period == upto:
        # The usual shape (a review's 24-month window): consecutive month starts ending at
        # ``upto``, every one with an actual. The timeline is then the series itself, so it
        # is made without the points by month (worked out later only if a rule asks).
        periods = tuple(map(_period_of, series))
        run = _month_run(periods[0], len(series))
        actuals = tuple(map(_actual_of, series))
        if periods == run and None not in actuals:
            value = tuple(zip(run, series, strict=True))
            own[("series", upto)] = (run, tuple(map(float, actuals)))
            own[key] = value
            return value
    points = _points(measure, own)
    # The months with data up to ``upto``; in C where it can be (it runs for every measure).
    with_data = list(compress(points, map(is_not, map(_actual_of, points.values()), repeat(None))))
    if with_data and max(with_data) > upto:
        with_data = [p for p in with_data if p <= upto]
    if not with_data:
        value: tuple = ()
    else:
        first = min(with_data)
        run = _month_run(first, months_between(first, upto) + 1)
        in_run = tuple(map(points.get, run))
        value = tuple(zip(run, in_run, strict=True))
        if own is not None and len(with_data) == len(run):
            # Every month of the run has data (they are distinct months from ``first`` to
            # ``upto``): no gap month, so the months with data are the run itself.
            own[("series", upto)] = (run, tuple(map(float, map(_actual_of, in_run))))
    if own is not None:
        own[key] = value
    return value


@lru_cache(maxsize=1024)
def _months_after(upto: date, count: int) -> tuple[date, ...]:
    """The ``count`` months after ``upto``'s month."""
    return _month_run(add_months(upto, 1), count)


def timeline(measure: MeasureInput, upto: date) -> list[tuple[date, MonthPoint | None]]:
    """Every month from the first month with an actual up to ``upto`` (inclusive), with its
    point, or ``None`` for a month absent from the series. Empty when there is no data."""
    return list(_timeline(measure, month_start(upto)))


def _series(
    measure: MeasureInput, upto: date, own: dict | None = None
) -> tuple[tuple[date, ...], tuple[float, ...]]:
    """The months up to ``upto`` (a month start) that have data, oldest first, and their
    actuals as floats: two parallel tuples, remembered (callers only read them)."""
    if own is None:
        own = _own(measure)
    key = ("series", upto)
    if own is not None:
        hit = own.get(key)
        if hit is not None:
            return hit
    months = _timeline(measure, upto, own)
    if own is not None:
        hit = own.get(key)  # _timeline remembers it when there is no gap month
        if hit is not None:
            return hit
    with_data = [(p, pt) for p, pt in months if pt is not None and pt.actual is not None]
    value = (
        tuple([p for p, _ in with_data]),
        tuple([float(pt.actual) for _, pt in with_data]),  # type: ignore[arg-type]
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


#: RAG by (target met, within tolerance), for :func:`_rags`.
_RAG_OF: dict[tuple[bool, bool], Rag] = {
    (True, True): "green",
    (True, False): "green",
    (False, True): "amber",
    (False, False): "red",
}
_trajectory_of = attrgetter("trajectory")
_point_of = itemgetter(1)  # of a (month, point) pair


def _rags(
    measure: MeasureInput, upto: date, amber_rule: AmberRule, own: dict | None
) -> dict[date, Rag | None]:
    """:func:`rag` of every month of the measure's timeline to ``upto`` (a month start), by
    month (``None`` for a gap month).

    The same tests as :func:`rag`, with the measure's attributes read once: it runs for every
    measure-month of a review. tests/evaluation/test_speedups.py checks it against rag()."""
    target, tolerance = measure.target, measure.tolerance
    higher = measure.direction == "higher_is_better"
    months = _timeline(measure, upto, own)
    periods, values = _series(measure, upto, own)
    # within_tolerance's bound, the same expression (None: no tolerance, never within it)
    bound = None if tolerance is None else tolerance + _EPS * max(1.0, abs(target))
    use_trajectory = amber_rule != "tolerance"
    use_tolerance = amber_rule != "trajectory"
    if len(periods) == len(months):  # no gap month: the values are every month's actual
        green = list(map(ge if higher else le, values, repeat(target)))
        if all(green):
            return dict.fromkeys(periods, "green")
        trajectories = map(_trajectory_of, map(_point_of, months))
        if not (use_trajectory and any(map(is_not, trajectories, repeat(None)))):
            # No trajectory value counts: amber is the tolerance test alone, done in C.
            if use_tolerance and bound is not None:
                near = map(le, map(abs, map(sub, values, repeat(target))), repeat(bound))
            else:
                near = repeat(False)
            rags = map(_RAG_OF.__getitem__, zip(green, near, strict=False))
            return dict(zip(periods, rags, strict=True))
    out: dict[date, Rag | None] = {}
    for period, point in months:
        if point is None or point.actual is None:
            out[period] = None
            continue
        value = float(point.actual)
        if value >= target if higher else value <= target:
            out[period] = "green"
            continue
        amber = False
        if use_trajectory and point.trajectory is not None:
            # meets_trajectory compares the actual as given (not float()-ed)
            actual, planned = point.actual, point.trajectory
            amber = actual >= planned if higher else actual <= planned
        if not amber and use_tolerance and bound is not None:
            amber = abs(value - target) <= bound
        out[period] = "amber" if amber else "red"
    return out


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


#: The rules used when none are passed (frozen, so one shared instance will do).
_DEFAULT_MONTH_COUNT_RULES = MonthCountRules()


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
    return _improvement_since(measure, since, month_start(upto), _own(measure))


def _improvement_since(
    measure: MeasureInput, since: date, upto: date, own: dict | None
) -> dict[str, object]:
    """:func:`improvement_since` with ``upto`` a month start and the measure's memo given."""
    since = month_start(since)
    periods, values = _series(measure, upto, own)
    # in month order: the months up to ``since`` come first
    split = len(periods)
    while split and periods[split - 1] > since:
        split -= 1
    after = list(zip(periods[split:], values[split:], strict=True))
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
    latest = _points(measure, own)[after[-1][0]]
    trajectory_met = meets_trajectory(measure, latest)
    # the same number of months up to ``since`` (fewer when there are not that many)
    start = max(0, split - len(after))
    before = list(zip(periods[start:split], values[start:split], strict=True))
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
    rules = rules or _DEFAULT_MONTH_COUNT_RULES
    upto = month_start(upto)
    own = _own(measure)
    months = _timeline(measure, upto, own)  # read only: no copy
    if not months:
        return MonthCount(status="no_data", consecutive_under=0)
    # Gap months, when there are any (the observed months are remembered for SPC anyway).
    missing: list[date] = []
    if len(_series(measure, upto, own)[0]) != len(months):
        missing = [p for p, pt in months if pt is None or pt.actual is None]
    # The current run is the months with data since the last change between missing and
    # meeting the target: read back from the latest month until the first change.
    under: list[date] = []
    met = 0
    target, higher = measure.target, measure.higher_is_better
    for period, point in reversed(months):
        if point is None or point.actual is None:
            continue  # a gap month neither counts nor breaks the run
        value = float(point.actual)
        if value >= target if higher else value <= target:  # meets_target, inline
            if under:
                break
            met += 1
        else:
            if met:
                break
            under.append(period)
    under.reverse()
    consecutive = len(under)
    projection = _forecast_memo(
        measure, upto, rules.forecast_horizon, FORECAST_WINDOW, FORECAST_MIN_POINTS, own
    )
    forecast_fails = bool(projection and projection.fails)

    improved: bool | None = None
    without = 0
    if plan_approved_on is not None and month_start(plan_approved_on) <= upto:
        test = _improvement_since(measure, plan_approved_on, upto, own)
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
    return _data_quality_warnings(measure, upto, _own(measure))


def _data_quality_warnings(measure: MeasureInput, upto: date, own: dict | None) -> tuple[str, ...]:
    """:func:`data_quality_warnings` with ``upto`` a month start and the measure's memo given."""
    months = _timeline(measure, upto, own)  # read only: no copy
    if not months:
        return (f"{measure.name} ({measure.code}): no data up to {month_label(upto, True)}.",)
    if len(_series(measure, upto, own)[0]) == len(months):
        return ()  # no gap month (the common case); the observed months are remembered anyway
    return tuple(
        f"{measure.name} ({measure.code}): no data for {month_label(period, True)}; "
        "the month is neither counted nor breaks the run."
        for period, point in months
        if point is None or point.actual is None
    )


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


def _runs_of_ones(flags: bytes, length: int, points: int | None = None) -> list[tuple[int, int]]:
    """The maximal runs of 1s in ``flags`` at least ``length`` long, as ``[start, end)``.

    With ``points`` (a trend's steps between ``points`` values) a run of ``k`` steps from
    ``i`` spans the points ``i .. i + k``; runs of length 0 are then the points not inside a
    run of 1s (a one-point "trend", only when the rules ask for ``length`` 0)."""
    out = []
    size, i = len(flags), 0
    while i < size:
        start = flags.find(1, i)
        if start < 0:
            break
        end = flags.find(0, start)
        if end < 0:
            end = size
        if end - start >= length:
            out.append((start, end))
        i = end
    if length <= 0 and points is not None:
        # every point outside the runs of 1s is a run of 0 steps of its own
        inside = set()
        for start, end in out:
            inside.update(range(start, end + 1))
        out += [(p, p) for p in range(points) if p not in inside]
    return out


def _kind(measure: MeasureInput, high: bool) -> str:
    return "improvement" if high == measure.higher_is_better else "concern"


#: The rules used when none are passed (frozen, so one shared instance will do).
_DEFAULT_SPC_RULES = SpcRules()


def spc(
    measure: MeasureInput, upto: date | None = None, rules: SpcRules | None = None
) -> SpcResult | None:
    """XmR chart and Making Data Count signals of a measure up to ``upto`` (default: its last
    month). Signals are direction-aware: a high point, shift or rising trend is an
    *improvement* when higher is better and a *concern* when lower is better (and vice versa).
    ``None`` when fewer than ``rules.min_points`` months have data.
    """
    rules = rules or _DEFAULT_SPC_RULES
    if upto is None:
        months = [month_start(p.period) for p in measure.series if p.actual is not None]
        if not months:
            return None
        upto = max(months)
    return _spc_memo(measure, month_start(upto), rules, _own(measure))


def may_end_in_run(measure: MeasureInput, upto: date, rules: SpcRules | None = None) -> bool:
    """Whether :func:`spc` up to ``upto`` can have a shift or trend signal ending at its
    latest month: False only when it certainly has none (fewer than ``min_points`` months,
    the last ``shift_length`` points not all on one side of the mean, and the last
    ``trend_length`` points not all rising or all falling). A cheap test before the chart:
    most measures in most months have no such run, and the sustained-deterioration trigger
    looks at nothing else."""
    rules = rules or _DEFAULT_SPC_RULES
    if rules.shift_length < 1 or rules.trend_length < 2:
        return True  # a degenerate rule: every chart may have one
    _, values = _series(measure, month_start(upto), _own(measure))
    n = len(values)
    if n < max(rules.min_points, 1):
        return False  # no chart
    if n >= rules.shift_length:
        mean = sum(values) / n  # as _spc works it out (the same float)
        tail = values[n - rules.shift_length :]
        if all(map(gt, tail, repeat(mean))) or all(map(lt, tail, repeat(mean))):
            return True
    if n >= rules.trend_length:
        tail = values[n - rules.trend_length :]
        later = tail[1:]
        if all(map(gt, later, tail)) or all(map(lt, later, tail)):
            return True
    return False


_MISSING = object()


def _spc_memo(
    measure: MeasureInput, upto: date, rules: SpcRules, own: dict | None
) -> SpcResult | None:
    """:func:`spc` with ``upto`` a month start, remembered in the measure's memo ``own``."""
    if own is None:
        return _spc(measure, upto, rules, None)
    # the default rules get a cheaper key (hashing a dataclass hashes all its fields)
    key = ("spc", upto) if rules is _DEFAULT_SPC_RULES else ("spc", upto, rules)
    hit = own.get(key, _MISSING)
    if hit is _MISSING:
        hit = own[key] = _spc(measure, upto, rules, own)
    return hit  # type: ignore[return-value]


def _spc(
    measure: MeasureInput, upto: date, rules: SpcRules, own: dict | None = None
) -> SpcResult | None:
    periods, values = _series(measure, upto, own)
    n = len(values)
    if n < rules.min_points:
        return None
    mean = sum(values) / len(values)
    # mean absolute moving range: |b - a| for each consecutive pair, summed in order
    mr_bar = sum(map(abs, map(sub, values[1:], values))) / (n - 1)
    ucl = mean + rules.limit_factor * mr_bar
    lcl = mean - rules.limit_factor * mr_bar
    sigma = mr_bar / rules.sigma_divisor
    signals: list[SpcSignal] = []

    # Runs are scanned as [start, end) index ranges; each rule as Making Data Count states it.
    # Most charts have no signal: each rule first rules its signals out as cheaply as it can
    # (for runs: the comparisons as bytes, 1 where it holds, and a search in C for a long
    # enough run; the scan that makes the signals runs only when there may be one).
    # mr_bar > 0 means no value is NaN, so max() and min() are well defined.
    top = bottom = 0.0
    if mr_bar > 0:
        top, bottom = max(values), min(values)

    # 1. A point beyond the process limits.
    if mr_bar > 0 and (top > ucl or bottom < lcl):
        for period, value in zip(periods, values, strict=True):
            if value > ucl or value < lcl:
                high = value > ucl
                signals.append(
                    SpcSignal(
                        "beyond_limits", (period,), _kind(measure, high), "high" if high else "low"
                    )  # type: ignore[arg-type]
                )

    # 2. A shift: a run of shift_length or more on one side of the mean (a point on the mean
    #    is on neither side): the maximal runs of 1s in "above" and in "below".
    shift_length = rules.shift_length
    above = bytes(map(gt, values, repeat(mean)))  # 1 above the mean, 0 below or on it
    # a long enough run of 0s is only a candidate (a point on the mean breaks a low run)
    if b"\x01" * max(shift_length, 1) in above or b"\x00" * max(shift_length, 1) in above:
        below = bytes(map(lt, values, repeat(mean)))
        for side, high in ((above, True), (below, False)):
            for first, end in _runs_of_ones(side, shift_length):
                signals.append(
                    SpcSignal(
                        "shift",
                        periods[first:end],
                        _kind(measure, high),  # type: ignore[arg-type]
                        "high" if high else "low",
                    )
                )

    # 3. A trend: trend_length or more points each higher (lower) than the one before: a run
    #    of trend_length - 1 or more rises (falls) between consecutive points.
    trend_length = rules.trend_length
    later = values[1:]
    rises = bytes(map(gt, later, values))  # 1 where a point is above the one before
    # trend_length points make one step fewer; a run of 0s (falls or unchanged values) is
    # only a candidate for a falling trend
    steps = max(trend_length - 1, 0)
    if b"\x01" * steps in rises or b"\x00" * steps in rises:
        falls = bytes(map(lt, later, values))
        for moves, rising in ((rises, True), (falls, False)):
            # a run of k steps from step i is the points i .. i + k; with trend_length <= 1
            # a single point is a trend (no step): each point not inside a longer run
            for first, end in _runs_of_ones(moves, steps, points=n):
                signals.append(
                    SpcSignal(
                        "trend",
                        periods[first : end + 1],
                        _kind(measure, rising),
                        "rising" if rising else "falling",
                    )  # type: ignore[arg-type]
                )

    # 4. Two of three consecutive points beyond 2 sigma on the same side (overlapping
    #    windows merged into one signal). (sigma > 0 implies mr_bar > 0: top / bottom are set.)
    #    A point is in such a window when another such point is at most 2 from it, and the
    #    merged windows are the chains of those points with gaps of at most 2.
    if sigma > 0 and n >= 3:  # (a window is three points)
        upper, lower = mean + 2 * sigma, mean - 2 * sigma
        for high in (True, False):
            if (top <= upper) if high else (bottom >= lower):
                continue  # no point beyond 2 sigma on this side
            near = bytes(map(gt, values, repeat(upper)) if high else map(lt, values, repeat(lower)))
            if near.count(1) < 2:
                continue  # no window can hold two
            at = [i for i in range(n) if near[i]]
            paired = [
                i
                for k, i in enumerate(at)
                if (k and i - at[k - 1] <= 2) or (k + 1 < len(at) and at[k + 1] - i <= 2)
            ]
            chains: list[list[int]] = []
            for i in paired:
                if chains and i - chains[-1][-1] <= 2:
                    chains[-1].append(i)
                else:
                    chains.append([i])
            for chain in chains:
                signals.append(
                    SpcSignal(
                        "two_of_three",
                        tuple(periods[i] for i in chain),
                        _kind(measure, high),  # type: ignore[arg-type]
                        "high" if high else "low",
                    )
                )

    if len(signals) > 1:
        signals.sort(key=lambda s: (s.periods[0], s.rule, s.side))
    return SpcResult(
        mean=mean,
        ucl=ucl,
        lcl=lcl,
        signals=tuple(signals),
        mr_bar=mr_bar,
        periods=periods,
    )


# --------------------------------------------------------------------------------------------
# Forecast (seed 002 "Performance Improvement": "failure predicted within the next quarter";
# "proactive forward look for the next 3 months")
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _x_terms(offsets: tuple[int, ...]) -> tuple[float, float, tuple[float, ...]]:
    """The x half of the least-squares fit on month offsets ``offsets``: mean, sum of
    squared deviations and the deviations. Nearly every forecast has the same x axis (6
    months without a gap), so these are worked out once per axis."""
    xs = [float(o) for o in offsets]
    mx = sum(xs) / len(xs)
    sxx = sum((x - mx) ** 2 for x in xs)
    return mx, sxx, tuple(x - mx for x in xs)


def _fit_offsets(offsets: tuple[int, ...], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line (slope, intercept) of ``ys`` on ``float(offsets)``.

    Bit for bit the straightforward fit (means as ``sum / n``, ``sum((x - mx) ** 2)``,
    ``sum((x - mx) * (y - my)) / sxx``), with the x terms remembered (see :func:`_x_terms`)."""
    mx, sxx, dxs = _x_terms(offsets)
    my = sum(ys) / len(ys)
    if sxx == 0:
        return 0.0, my
    slope = sum(map(mul, dxs, [y - my for y in ys])) / sxx
    return slope, my - slope * mx


#: The forecast's defaults: 3 months ahead ("the next quarter", seed 002), a line fitted to the
#: last 6 months with data, and no forecast from fewer than 3.
FORECAST_HORIZON = 3
FORECAST_WINDOW = 6
FORECAST_MIN_POINTS = 3


def forecast(
    measure: MeasureInput,
    upto: date,
    horizon: int = FORECAST_HORIZON,
    *,
    window: int = FORECAST_WINDOW,
    min_points: int = FORECAST_MIN_POINTS,
) -> Forecast | None:
    """Project the measure ``horizon`` months beyond ``upto`` with a least-squares linear
    trend on its last ``window`` (6) months with data (gap months keep their place on the time
    axis). Each projected month is compared with that month's trajectory value when the
    series carries one, else with the target; ``Forecast.fails`` is True when any projected
    month misses it. ``None`` with fewer than ``min_points`` months of data.
    """
    return _forecast_memo(measure, month_start(upto), horizon, window, min_points, _own(measure))


def _forecast_memo(
    measure: MeasureInput,
    upto: date,
    horizon: int,
    window: int,
    min_points: int,
    own: dict | None,
) -> Forecast | None:
    """:func:`forecast` with ``upto`` a month start, remembered in the measure's memo."""
    if own is None:
        return _forecast(measure, upto, horizon, window, min_points, None)
    key = ("forecast", upto, horizon, window, min_points)
    hit = own.get(key, _MISSING)
    if hit is _MISSING:
        hit = own[key] = _forecast(measure, upto, horizon, window, min_points, own)
    return hit  # type: ignore[return-value]


def _forecast(
    measure: MeasureInput,
    upto: date,
    horizon: int,
    window: int,
    min_points: int,
    own: dict | None = None,
) -> Forecast | None:
    periods, values = _series(measure, upto, own)
    basis, ys = periods[-window:], values[-window:]
    if len(basis) < min_points:
        return None
    origin = _index(basis[0])
    if _index(basis[-1]) - origin == len(basis) - 1:
        offsets = tuple(range(len(basis)))  # no gap month in the window (the common case)
    else:
        offsets = tuple(_index(p) - origin for p in basis)
    slope, intercept = _fit_offsets(offsets, ys)
    points = _points(measure, own)
    higher = measure.higher_is_better
    start = _index(upto) - origin
    out = []
    for step, period in enumerate(_months_after(upto, horizon), 1):
        value = intercept + slope * (start + step)
        if not math.isfinite(value):
            continue
        planned = points.get(period)
        if planned is not None and planned.trajectory is not None:
            bar, bar_kind = float(planned.trajectory), "trajectory"
        else:
            bar, bar_kind = float(measure.target), "target"
        moved = value + 0.0
        fails = not (moved >= bar if higher else moved <= bar) and not math.isclose(
            value, bar, rel_tol=_EPS, abs_tol=_EPS
        )
        out.append(ForecastPoint(period, value, bar, bar_kind, fails))  # type: ignore[arg-type]
    return Forecast(points=tuple(out), slope=slope, basis=basis)
