"""Boundary tests for the pure rules (DOMAIN.md decisions 3, 4, 5; seed 002; Making Data
Count)."""

from __future__ import annotations

from datetime import date

import pytest

from workflow_app.evaluation import (
    FinancePoint,
    MonthPoint,
    finance_signals,
    forecast,
    improvement_since,
    meets_target,
    month_count,
    rag,
    spc,
)
from workflow_app.evaluation.rules import data_quality_warnings, months_between

from .builders import measure, month

# --------------------------------------------------------------------------------------------
# RAG (DOMAIN.md decision 3)
# --------------------------------------------------------------------------------------------

OCT = month(10)


@pytest.mark.parametrize(
    ("actual", "trajectory", "rule", "expected"),
    [
        (85, None, "either", "green"),  # exactly on target meets it
        (90, None, "either", "green"),
        (84, 84, "either", "amber"),  # trajectory met exactly
        (84, 84, "trajectory", "amber"),
        (84, 84, "tolerance", "amber"),  # 1 point short, tolerance 1
        (83.9, 84, "trajectory", "red"),  # trajectory missed
        (84, None, "tolerance", "amber"),  # within tolerance exactly
        (83.99, None, "tolerance", "red"),  # just outside tolerance
        (83.99, None, "trajectory", "red"),
        (83.99, 83, "tolerance", "red"),  # trajectory met but rule is tolerance only
        (83.99, 83, "either", "amber"),
        (None, 80, "either", None),  # gap month has no colour
    ],
)
def test_rag_higher_is_better(actual, trajectory, rule, expected):
    m = measure(target=85, tolerance=1)
    assert rag(m, MonthPoint(OCT, actual, trajectory), rule) == expected


@pytest.mark.parametrize(
    ("actual", "trajectory", "rule", "expected"),
    [
        (7.5, None, "either", "green"),
        (7.0, None, "either", "green"),
        (8.0, None, "tolerance", "amber"),  # 0.5 over, tolerance 0.5
        (8.01, None, "tolerance", "red"),
        (8.2, 8.2, "trajectory", "amber"),
        (8.3, 8.2, "trajectory", "red"),
        (8.3, 8.2, "either", "red"),
    ],
)
def test_rag_lower_is_better(actual, trajectory, rule, expected):
    m = measure(target=7.5, tolerance=0.5, direction="lower_is_better", unit_of_measure="days")
    assert rag(m, MonthPoint(OCT, actual, trajectory), rule) == expected


def test_rag_without_tolerance_is_red_unless_on_trajectory():
    m = measure(target=85, tolerance=None)
    assert rag(m, MonthPoint(OCT, 84.99, None)) == "red"
    assert rag(m, MonthPoint(OCT, 84.99, 84)) == "amber"


def test_meets_target_both_directions():
    up = measure(target=85)
    down = measure(target=85, direction="lower_is_better")
    assert meets_target(up, 85) and not meets_target(up, 84.999)
    assert meets_target(down, 85) and not meets_target(down, 85.001)


# --------------------------------------------------------------------------------------------
# Month counts (seed 002 "Performance Improvement"; DOMAIN.md decision 4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "status", "count"),
    [
        ([86, 86, 86, 86], "performing", 0),
        ([86, 86, 86, 84], "monitor", 1),
        ([86, 86, 84, 84], "improvement_plan", 2),
        ([86, 84, 84, 84], "improvement_plan", 3),
        ([84, 84, 86, 84], "monitor", 1),  # the count restarts when the target is met
    ],
)
def test_month_count_consecutive(values, status, count):
    # Flat-ish values so that the forecast does not move the status.
    result = month_count(measure(values), month(len(values)))
    assert result.consecutive_under == count
    assert result.status == status or (result.forecast_fails and status == "monitor")


def test_month_count_one_month_is_monitor_when_no_failure_forecast():
    result = month_count(measure([80, 86, 88, 84]), month(4))  # trend rising: no forecast failure
    assert not result.forecast_fails
    assert result.status == "monitor"


def test_gap_month_neither_counts_nor_breaks_the_run_and_warns():
    m = measure([86, 84, None, 84])
    result = month_count(m, month(4))
    assert result.consecutive_under == 2
    assert result.under_periods == (month(2), month(4))
    assert result.missing_periods == (month(3),)
    warnings = data_quality_warnings(m, month(4))
    assert len(warnings) == 1 and "Mar 2026" in warnings[0]


def test_gap_month_does_not_break_a_met_run():
    result = month_count(measure([84, 86, None, 86]), month(4))
    assert result.consecutive_under == 0
    assert result.consecutive_met == 2


def test_gap_in_the_evaluated_month_is_a_warning():
    m = measure([84, 84])
    assert month_count(m, month(3)).missing_periods == (month(3),)
    assert data_quality_warnings(m, month(3))


def test_no_data_status():
    result = month_count(measure([]), month(3))
    assert result.status == "no_data" and result.consecutive_under == 0


def test_failure_forecast_raises_status_to_improvement_plan():
    result = month_count(measure([95, 92, 89, 86]), month(4))
    assert result.consecutive_under == 0
    assert result.forecast_fails
    assert result.status == "improvement_plan"


def test_three_months_without_improvement_since_plan_is_first_level():
    # Plan approved in April; May-Jul no better than Feb-Apr.
    m = measure([86, 82, 81, 80, 80, 79, 79])
    result = month_count(m, month(7), plan_approved_on=date(2026, 4, 15))
    assert result.improvement_since_plan is False
    assert result.months_without_improvement == 3
    assert result.status == "first_level"


def test_two_months_without_improvement_is_not_yet_first_level():
    m = measure([86, 82, 81, 80, 80, 79])
    result = month_count(m, month(6), plan_approved_on=date(2026, 4, 1))
    assert result.months_without_improvement == 2
    assert result.status == "improvement_plan"


def test_improvement_by_mean_since_plan():
    m = measure([86, 80, 80, 80, 81, 81, 81])
    result = month_count(m, month(7), plan_approved_on=month(4))
    assert result.improvement_since_plan is True
    assert result.months_without_improvement == 0
    assert result.status == "improvement_plan"


def test_equal_means_are_not_an_improvement():
    test = improvement_since(measure([80, 80, 80, 80]), month(2), month(4))
    assert test["mean_since"] == test["mean_before"] == 80
    assert test["improved"] is False


def test_improvement_by_meeting_the_plan_trajectory():
    m = measure([80, 80, 80, 79], trajectory=[None, None, None, 79])
    test = improvement_since(m, month(2), month(4))
    assert test["trajectory_met"] is True
    assert test["improved"] is True


def test_improvement_lower_is_better():
    m = measure([10, 10, 9, 9], direction="lower_is_better", target=5)
    assert improvement_since(m, month(2), month(4))["improved"] is True


def test_continued_failure_is_second_level():
    m = measure([86, 80, 80, 80, 80, 80, 80, 80, 80])
    result = month_count(m, month(9), plan_approved_on=month(3))
    assert result.months_without_improvement == 6
    assert result.status == "second_level"


# --------------------------------------------------------------------------------------------
# Finance (seed 000 7.8 Level 2b; DOMAIN.md decision 5)
# --------------------------------------------------------------------------------------------

THRESHOLDS = {"ytd_overspend": 500_000, "forecast_overspend": 1_000_000}


def _fin(ytd, fc):
    return finance_signals([FinancePoint(OCT, ytd, fc)], OCT, THRESHOLDS)


def test_finance_exactly_at_threshold_is_not_more_than():
    assert _fin(500_000, 1_000_000) == ()


def test_finance_ytd_just_above():
    (signal,) = _fin(500_000.01, 0)
    assert signal.kind == "ytd_overspend" and signal.value == 500_000.01


def test_finance_forecast_just_above():
    (signal,) = _fin(0, 1_000_000.01)
    assert signal.kind == "forecast_overspend"


def test_finance_both():
    assert [s.kind for s in _fin(600_000, 1_200_000)] == ["ytd_overspend", "forecast_overspend"]


def test_finance_underspend_never_signals():
    assert finance_signals([FinancePoint(OCT, -900_000, -2_000_000)], OCT, {}) == ()
    assert (
        finance_signals(
            [FinancePoint(OCT, -900_000, -2_000_000)],
            OCT,
            {"ytd_overspend": -1_000_000, "forecast_overspend": -3_000_000},
        )
        == ()
    )


def test_finance_uses_the_period_return_only():
    points = [FinancePoint(month(9), 900_000, 0), FinancePoint(OCT, 100, 0)]
    assert finance_signals(points, OCT, THRESHOLDS) == ()
    assert finance_signals(points, month(11), THRESHOLDS) == ()


# --------------------------------------------------------------------------------------------
# SPC (Making Data Count, XmR)
# --------------------------------------------------------------------------------------------

BASE = [50, 52, 49, 51, 50, 48, 52, 50, 49, 51, 50, 52]


def _rules(m):
    result = spc(m)
    assert result is not None
    return {(s.rule, s.kind) for s in result.signals}


def test_spc_limits():
    m = measure([10, 12, 11, 13, 12])
    result = spc(m)
    assert result.mean == pytest.approx(11.6)
    mr_bar = (2 + 1 + 2 + 1) / 4
    assert result.ucl == pytest.approx(11.6 + 2.66 * mr_bar)
    assert result.lcl == pytest.approx(11.6 - 2.66 * mr_bar)


def test_spc_stable_process_has_no_signals():
    assert _rules(measure(BASE, target=50)) == set()


def test_spc_point_beyond_limits_direction_aware():
    high = BASE + [70]
    assert ("beyond_limits", "improvement") in _rules(measure(high))
    assert ("beyond_limits", "concern") in _rules(measure(high, direction="lower_is_better"))
    low = BASE + [30]
    assert ("beyond_limits", "concern") in _rules(measure(low))


def test_spc_point_just_inside_limits_is_not_a_signal():
    m = measure(BASE + [55])
    result = spc(m)
    assert result.ucl > 55
    assert not [s for s in result.signals if s.rule == "beyond_limits"]


def test_spc_shift_of_seven():
    values = [50, 49, 51, 50, 49, 51, 50, 49, 51] + [52, 53, 52, 53, 52, 53, 52]
    result = spc(measure(values))
    high = [s for s in result.signals if s.rule == "shift" and s.side == "high"]
    assert len(high) == 1 and high[0].kind == "improvement" and len(high[0].periods) == 7
    # The nine earlier months are all below the (raised) mean: a low shift, a concern.
    low = [s for s in result.signals if s.rule == "shift" and s.side == "low"]
    assert len(low) == 1 and low[0].kind == "concern" and len(low[0].periods) == 9


def test_spc_six_on_one_side_is_not_a_shift():
    values = [48, 49, 48, 49, 48, 49, 48, 49, 48] + [52, 53, 52, 53, 52, 53] + [44]
    result = spc(measure(values))
    assert not [s for s in result.signals if s.rule == "shift" and s.side == "high"]


def test_spc_trend_of_six_falling_is_concern_when_higher_is_better():
    values = [50, 52, 49, 51, 50, 52, 51, 50, 49, 48, 47]
    result = spc(measure(values))
    trends = [s for s in result.signals if s.rule == "trend"]
    assert len(trends) == 1 and trends[0].kind == "concern" and len(trends[0].periods) == 6
    lower = spc(measure(values, direction="lower_is_better"))
    assert [s.kind for s in lower.signals if s.rule == "trend"] == ["improvement"]


def test_spc_five_rising_or_a_repeat_is_not_a_trend():
    assert not [s for s in spc(measure([50, 52, 49, 51, 52, 53, 54])).signals if s.rule == "trend"]
    flat = [50, 51, 52, 53, 53, 54, 55]  # a repeated value breaks the trend
    assert not [s for s in spc(measure(flat)).signals if s.rule == "trend"]


def test_spc_two_of_three_beyond_two_sigma():
    values = BASE + [56, 50, 56]
    result = spc(measure(values))
    sigma = result.mr_bar / 1.128
    assert result.mean + 2 * sigma < 56 and result.ucl > 56
    hits = [s for s in result.signals if s.rule == "two_of_three"]
    assert hits and hits[-1].kind == "improvement" and hits[-1].side == "high"


def test_spc_one_of_three_beyond_two_sigma_is_not_a_signal():
    values = BASE + [56, 50, 50]
    result = spc(measure(values))
    assert not [s for s in result.signals if s.rule == "two_of_three" and month(13) in s.periods]


def test_spc_two_beyond_two_sigma_on_opposite_sides_is_not_a_signal():
    values = BASE + [56, 45]
    result = spc(measure(values))
    assert not [s for s in result.signals if s.rule == "two_of_three"]


def test_spc_needs_three_points_and_skips_gaps():
    assert spc(measure([50, 51])) is None
    result = spc(measure([50, None, 51, 52]))
    assert len(result.periods) == 3


# --------------------------------------------------------------------------------------------
# Forecast (seed 002: "failure predicted within the next quarter")
# --------------------------------------------------------------------------------------------


def test_forecast_linear_trend_on_last_six_months():
    m = measure([10, 10, 100, 90, 91, 92, 93, 94, 95])  # the first three months are ignored
    result = forecast(m, month(9), horizon=3)
    assert result.basis == tuple(month(i) for i in range(4, 10))
    assert result.slope == pytest.approx(1.0)
    assert [round(p.value, 6) for p in result.points] == [96, 97, 98]
    assert [p.period for p in result.points] == [month(10), month(11), month(12)]


def test_forecast_against_trajectory_then_target():
    m = measure(
        [80, 80, 80, 80, None, None],
        target=85,
        trajectory=[None, None, None, None, 81, None],
    )
    result = forecast(m, month(4), horizon=2)
    assert result.points[0].bar_kind == "trajectory" and result.points[0].fails
    assert result.points[1].bar_kind == "target" and result.points[1].fails


def test_forecast_on_the_bar_is_not_a_failure():
    m = measure([88, 87, 86], target=85)
    result = forecast(m, month(3), horizon=3)
    assert [p.fails for p in result.points] == [False, True, True]  # 85, 84, 83


def test_forecast_needs_three_months():
    assert forecast(measure([80, 81]), month(2)) is None


def test_forecast_gap_months_keep_their_place():
    m = measure([90, None, 86, 84])
    result = forecast(m, month(4), horizon=1)
    # x = 0, 2, 3 (March is a gap): slope -2; ignoring the gap would give -3.
    assert result.slope == pytest.approx(-2.0)


def test_months_between():
    assert months_between(date(2025, 11, 1), date(2026, 2, 1)) == 3
