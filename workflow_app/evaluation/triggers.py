"""Evaluate a unit for one month and turn the framework's triggers into proposals.

:func:`evaluate_unit` runs the rules of :mod:`workflow_app.evaluation.rules` on every measure
(RAG, month counts, SPC, forecast, data-quality warnings) and on the finance return, then
interprets ``framework.triggers`` (the ``triggers:`` section of the framework file is data:
every threshold comes from it). Triggers create **proposals**, never level changes
(DOMAIN.md, "the engine proposes; people decide").

How triggers are read
=====================

Each trigger has ``id``, ``propose`` (``track`` and ``to``, or ``down_one_level: true``) and
``when_any`` / ``when_all`` lists of conditions (both, if given, must hold). A condition is a
``signal`` with parameters. A signal the engine cannot evaluate from the inputs (no plan, no
``level_since``, unknown signal name) is simply false; an unknown name also adds a warning.

Tracks and scope. A trigger naming a plain track (``track: finance``) is evaluated once, for
that track, over the whole unit (all measures, all concerns). A trigger naming a per-measure
track (``track: measure``) is evaluated for each measure on its own case ``measure:<CODE>``
(framework C), over that measure and the concerns of its domain. A trigger with no track is
evaluated on every track of the framework, over the track's part of the unit: a track that
names a domain (NHS Wales pillars ``quality``, ``workforce``, ``finance``, ``delivery``,
``leadership``; see ``DOMAIN_ALIASES``) covers the measures and concerns of that domain; a
track that names no domain (IQPF ``performance``) covers everything no other track claims.
Plans are always the plan of the track being evaluated (``PlanInput.track``).

Proposals. For each case (unit x track key) at its current level (``unit.levels``, else the
track's lowest level):

* escalation: among the fired ``to`` triggers whose level is **above** the current one and
  whose move is a declared transition (``framework.transition``), the highest level is
  proposed (ties: the first trigger in the file). A ``to`` trigger never proposes a move down.
* de-escalation: a fired ``down_one_level`` trigger proposes the level below on the track's
  own order, if that move is declared, and only if no escalation trigger for the current
  level or above still fires on the case (decision: do not propose stepping down while the
  reason for the level still holds).
* never the current level, never an undeclared move; output ordered by the framework's track
  order, per-measure cases by measure code, escalations before de-escalations.

Signals
=======

"In scope" = the measures / concerns / plan of the case being evaluated (see above). "Bar" of a
month = its trajectory value when the series has one, else the target. Month runs are counted
as DOMAIN.md decision 4: gap months neither count nor break the run.

============================================================  =================================
signal (parameters)                                           true when
============================================================  =================================
``ytd_overspend`` (greater_than)                              the period's YTD variance is
                                                              strictly above the threshold
                                                              (seed 000 7.8 Level 2b; DOMAIN.md
                                                              dec. 5: positive = overspend)
``forecast_overspend`` (greater_than)                         the period's forecast outturn
                                                              variance is strictly above it
``failing_key_deliverables`` (greater_than | at_least)        the number of in-scope key
                                                              deliverables RED in the period
                                                              passes the count (seed 000 7.8
                                                              Level 2a)
``sustained_deterioration`` (domains_at_least)                that many domains have a measure
                                                              with a current SPC *concern*
                                                              shift or trend (one that includes
                                                              the latest month)
``trajectory_missed`` (measure_kind, months_at_least=1)       an in-scope measure of those kinds
                                                              has missed its bar for that many
                                                              consecutive months
``ministerial_priority_trajectory_missed``                    the same for ``ministerial_
(months_at_least)                                             priority`` measures (seed 000 7.8
                                                              Level 3)
``concern_recorded`` (kind, severity_at_least)                an in-scope concern of that kind
                                                              (text or list) / at least that
                                                              severity occurred by the period's
                                                              end (DOMAIN.md dec. 6)
``plan_trajectory_missed`` (months_at_least)                  the track has a plan approved
                                                              before the period, and for that
                                                              many consecutive months since the
                                                              approval month some in-scope
                                                              measure missed its bar
``failing_objectives`` (at_least, months_at_least=3)          the track has an approved plan
                                                              and that many in-scope measures
                                                              have missed their bar for
                                                              months_at_least consecutive
                                                              months since its approval
``plan_actions_delivered``                                    the track's plan says its actions
                                                              are delivered
``measures_on_trajectory`` (months_at_least)                  the track's plan has been on
                                                              trajectory that many months
                                                              (``trajectory_met_months``), or
                                                              every in-scope measure with data
                                                              met its bar in each of its last
                                                              that many months with data
``level_held`` (months_at_least)                              the case has been at its current
                                                              level that many months
                                                              (``unit.level_since``)
``failing_measures_in_domain`` (at_least=1,                   that many in-scope measures have
months_at_least=1)                                            missed target that many
                                                              consecutive months
``consecutive_months_under_target`` (at_least)                an in-scope measure has missed
                                                              target that many consecutive
                                                              months (seed 002)
``failure_forecast`` (within_months=3)                        an in-scope measure's linear
                                                              forecast misses its bar within
                                                              that many months (seed 002)
``months_without_improvement_since_plan`` (at_least,          the track's plan was approved and
risk_at_least)                                                an in-scope measure still under
                                                              target has had that many months
                                                              with data since without
                                                              improvement (DOMAIN.md dec. 4);
                                                              with risk_at_least, the plan's
                                                              assessed risk must be that high
``months_at_level_without_improvement`` (level, at_least)     the case is at ``level``, and an
                                                              in-scope measure still under
                                                              target has had that many months
                                                              since reaching it without
                                                              improvement (dec. 4 test from the
                                                              month the level was reached)
``months_since_delivery_group_report_without_improvement``    the same test from the plan's
(at_least)                                                    ``delivery_group_report_on``
``consecutive_months_meeting_target`` (at_least)              every in-scope measure with data
                                                              has met target that many
                                                              consecutive months
============================================================  =================================

For "failing" signals one in-scope measure is enough; the "good" signals
(``measures_on_trajectory``, ``consecutive_months_meeting_target``) need every in-scope
measure with data.

A plan that names its measures (``PlanInput.measure_codes``) is judged on those by
``plan_trajectory_missed`` and ``failing_objectives``; both stay quiet while the plan's review
period runs (``PlanInput.review_period_ends_on``, DOMAIN.md decision 9) and fire again from the
review of the period's last month if the plan is still failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from state_machines.framework import Framework, Track
from workflow_app.canonical import canonical_json, sha256_hex

from .model import (
    SEVERITY_ORDER,
    AmberRule,
    ConcernInput,
    MeasureEvaluation,
    MeasureInput,
    MonthCount,
    MonthPoint,
    PlanInput,
    ProposalDraft,
    UnitEvaluation,
    UnitInput,
)
from .rules import _DEFAULT_SPC_RULES as DEFAULT_SPC_RULES
from .rules import (
    DEFAULT_AMBER_RULE,
    FORECAST_HORIZON,
    FORECAST_MIN_POINTS,
    FORECAST_WINDOW,
    MonthCountRules,
    add_months,
    finance_signals,
    forecast,
    improvement_since,
    may_end_in_run,
    memoized,
    month_count,
    month_start,
    months_between,
    rag,
    spc,
)
from .rules import _data_quality_warnings as rules_dq
from .rules import _forecast_memo as rules_forecast
from .rules import _own as rules_own
from .rules import _points as rules_points
from .rules import _rags as rules_rags
from .rules import _spc_memo as rules_spc
from .rules import _timeline as rules_timeline
from .text import (
    join_words,
    money,
    month_label,
    month_name,
    months_phrase,
    number,
    plural,
    value_with_unit,
    values_by_month,
)

__all__ = ["DOMAIN_ALIASES", "SIGNALS", "evaluate_unit", "fingerprint"]

#: Track (pillar) name -> measure / concern domain codes it covers. The NHS Wales pillars are
#: named differently from the domain codes the application stores (workflow_app/demo.py).
DOMAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "quality": ("quality", "quality_safety_experience"),
    "workforce": ("workforce", "workforce_culture"),
    "finance": ("finance", "finance_value"),
    "delivery": ("delivery", "access_activity"),
    "leadership": ("leadership",),
}


# --------------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------------


@dataclass
class _Scope:
    key: str
    track: Track
    measures: tuple[MeasureInput, ...]
    concerns: tuple[ConcernInput, ...]
    plan: PlanInput | None
    level: str
    label: str
    measure: MeasureInput | None = None


@dataclass
class _Ctx:
    unit: UnitInput
    period: date
    framework: Framework
    amber_rule: AmberRule
    warnings: list[str] = field(default_factory=list)
    _counts: dict[tuple[str, date | None], MonthCount] = field(default_factory=dict)

    def count(self, measure: MeasureInput, plan_on: date | None = None) -> MonthCount:
        key = (measure.code, plan_on)
        if key not in self._counts:
            self._counts[key] = month_count(measure, self.period, plan_on)
        return self._counts[key]


@dataclass
class _Finding:
    sentence: str
    data: dict[str, Any]


Signal = Callable[[_Ctx, _Scope, dict[str, Any]], "_Finding | None"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


@lru_cache(maxsize=1024)
def _ym(period: date) -> str:
    return period.strftime("%Y-%m")  # remembered: evidence names the same months many times


def _points(measure: MeasureInput) -> dict[date, MonthPoint]:
    return rules_points(measure)  # remembered per measure while a unit is evaluated


def _bar(measure: MeasureInput, point: MonthPoint) -> tuple[float, str]:
    if point.trajectory is not None:
        return float(point.trajectory), "trajectory"
    return float(measure.target), "target"


def _meets_bar(measure: MeasureInput, point: MonthPoint) -> bool:
    bar, _ = _bar(measure, point)
    value = float(point.actual)  # type: ignore[arg-type]
    return value >= bar if measure.higher_is_better else value <= bar


def _bar_miss_run(measure: MeasureInput, upto: date, after: date | None = None) -> list[date]:
    """Months of the current run of missed bars (gap months skipped), only months after
    ``after``'s month when given."""
    run: list[date] = []
    first = None if after is None else month_start(after)
    higher = measure.higher_is_better
    target = float(measure.target)
    # Read back from the latest month (the timeline is in month order) to the last month
    # that met its bar: the months missed since then are the run.
    for period, point in reversed(rules_timeline(measure, month_start(upto))):
        if first is not None and period <= first:
            break  # this month and every earlier one are not after ``after``
        if point is None or point.actual is None:
            continue
        # _meets_bar, inline: the bar is the month's trajectory value, else the target
        bar = target if point.trajectory is None else float(point.trajectory)
        value = float(point.actual)
        if value >= bar if higher else value <= bar:
            break
        run.append(period)
    run.reverse()
    return run


def _measure_json(measure: MeasureInput, periods: Iterable[date]) -> dict[str, Any]:
    points = _points(measure)
    months = []
    for period in periods:
        point = points.get(period)
        months.append(
            {
                "period": _ym(period),
                "actual": _r(point.actual) if point else None,
                "trajectory": _r(point.trajectory) if point else None,
            }
        )
    return {
        "code": measure.code,
        "name": measure.name,
        "kind": measure.kind,
        "domain": measure.domain,
        "target": _r(measure.target),
        "direction": measure.direction,
        "tolerance": _r(measure.tolerance),
        "unit_of_measure": measure.unit_of_measure,
        "months": months,
    }


def _fmt(measure: MeasureInput, value: float) -> str:
    return value_with_unit(value, measure.unit_of_measure)


def _values(measure: MeasureInput, periods: list[date], ref: date) -> str:
    points = _points(measure)
    return values_by_month(
        [(p, float(points[p].actual)) for p in periods if points[p].actual is not None],  # type: ignore[arg-type]
        measure.unit_of_measure,
        ref,
    )


def _values_vs_bar(measure: MeasureInput, periods: list[date], ref: date) -> str:
    points = _points(measure)
    with_year = len({p.year for p in periods} | {ref.year}) > 1
    parts = []
    for p in periods:
        bar, kind = _bar(measure, points[p])
        parts.append(
            f"{month_label(p, with_year)} {_fmt(measure, float(points[p].actual))} "  # type: ignore[arg-type]
            f"against {'a trajectory of ' if kind == 'trajectory' else ''}{_fmt(measure, bar)}"
        )
    return ", ".join(parts)


def _count_ok(count: int, cond: dict[str, Any], default_at_least: int = 1) -> bool:
    if cond.get("greater_than") is not None:
        return count > float(cond["greater_than"])
    return count >= float(cond.get("at_least", default_at_least))


def _count_words(cond: dict[str, Any], default_at_least: int = 1) -> str:
    if cond.get("greater_than") is not None:
        return f"more than {number(cond['greater_than'])}"
    return f"at least {number(cond.get('at_least', default_at_least))}"


def _severity_rank(severity: str | None) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else -1


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _months_n(cond: dict[str, Any], key: str = "months_at_least", default: int = 1) -> int:
    return int(cond.get(key, default))


def _under_sentence(ctx: _Ctx, measure: MeasureInput, count: MonthCount) -> str:
    periods = list(count.under_periods)
    text = (
        f"{measure.name} has missed its {_fmt(measure, measure.target)} target for "
        f"{plural(len(periods), 'consecutive month')} ({_values(measure, periods, ctx.period)})"
    )
    gaps = [p for p in count.missing_periods if periods and p > periods[0]]
    if gaps:
        text += f"; no data for {months_phrase(gaps, ctx.period)} (not counted, run not broken)"
    return text


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------


def _finance(kind: str, words: str) -> Signal:
    def signal(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
        if cond.get("greater_than") is None:
            return None
        found = finance_signals(ctx.unit.finance, ctx.period, {kind: float(cond["greater_than"])})
        if not found:
            return None
        hit = found[0]
        return _Finding(
            f"The {words} in {month_label(ctx.period, True)} is {money(hit.value)}, more than "
            f"the {money(hit.threshold)} threshold",
            {"period": _ym(hit.period), "value": _r(hit.value), "threshold": _r(hit.threshold)},
        )

    return signal


def _failing_key_deliverables(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    failing = []
    points_by = {m.code: _points(m) for m in scope.measures}
    for m in scope.measures:
        point = points_by[m.code].get(ctx.period)
        if m.is_key_deliverable and point is not None and rag(m, point, ctx.amber_rule) == "red":
            failing.append(m)
    if not failing or not _count_ok(len(failing), cond):
        return None
    details = [
        f"{m.name} ({_fmt(m, float(points_by[m.code][ctx.period].actual))} against "  # type: ignore[arg-type]
        f"{_fmt(m, m.target)})"
        for m in failing
    ]
    return _Finding(
        f"{plural(len(failing), 'key deliverable')} {'is' if len(failing) == 1 else 'are'} red "
        f"in {month_label(ctx.period, True)} ({_count_words(cond)} needed): "
        f"{join_words(details)}",
        {"count": len(failing), "measures": [_measure_json(m, [ctx.period]) for m in failing]},
    )


def _sustained_deterioration(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    by_domain: dict[str, list[tuple[MeasureInput, Any, Any]]] = {}
    for m in scope.measures:
        if not may_end_in_run(m, ctx.period):
            continue  # certainly no shift or trend up to the latest month: no chart needed
        chart = spc(m, ctx.period)
        if chart is None:
            continue
        last = chart.periods[-1]
        for s in chart.signals:
            if s.kind == "concern" and s.rule in ("shift", "trend") and s.periods[-1] == last:
                by_domain.setdefault(m.domain, []).append((m, s, chart))
                break
    need = int(cond.get("domains_at_least", 1))
    if len(by_domain) < need or not by_domain:
        return None
    parts, measures = [], []
    for domain in sorted(by_domain):
        for m, s, chart in by_domain[domain]:
            what = (
                f"{len(s.periods)} months in a row {'above' if s.side == 'high' else 'below'} "
                f"its average of {_fmt(m, chart.mean)}"
                if s.rule == "shift"
                else f"{len(s.periods)} months {s.side} in a row"
            )
            parts.append(
                f"{m.name} ({domain}): {what} ({months_phrase(list(s.periods), ctx.period)})"
            )
            entry = _measure_json(m, list(s.periods))
            entry["spc"] = {
                "rule": s.rule,
                "side": s.side,
                "mean": _r(chart.mean),
                "ucl": _r(chart.ucl),
                "lcl": _r(chart.lcl),
            }
            measures.append(entry)
    return _Finding(
        f"Sustained deterioration (statistical process control) in "
        f"{plural(len(by_domain), 'domain')}: " + "; ".join(parts),
        {"domains": sorted(by_domain), "measures": measures},
    )


def _recent(measure: MeasureInput, ctx: _Ctx) -> list[tuple[date, MonthPoint]]:
    return [(p, pt) for p, pt in rules_timeline(measure, ctx.period) if pt is not None]


def _trajectory_missed_kinds(kinds: list[str] | None, label: str) -> Signal:
    def signal(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
        wanted = _as_list(cond.get("measure_kind")) or kinds
        need = _months_n(cond)
        parts, measures = [], []
        for m in scope.measures:
            if wanted is not None and m.kind not in wanted:
                continue
            run = _bar_miss_run(m, ctx.period)
            if len(run) >= need and run:
                shown = run[-max(need, 1) :] if len(run) > 6 else run
                parts.append(
                    f"{m.name}{label} has missed its trajectory for "
                    f"{plural(len(run), 'consecutive month')} "
                    f"({_values_vs_bar(m, shown, ctx.period)})"
                )
                measures.append(_measure_json(m, run))
        if not parts:
            return None
        return _Finding("; ".join(parts), {"measures": measures})

    return signal


def _concern_recorded(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    kinds = _as_list(cond.get("kind"))
    floor = cond.get("severity_at_least")
    end = add_months(ctx.period, 1)
    hits = []
    for c in scope.concerns:
        if kinds is not None and c.kind not in kinds:
            continue
        if floor is not None and _severity_rank(c.severity) < _severity_rank(str(floor)):
            continue
        if c.occurred_on is not None and c.occurred_on >= end:
            continue
        hits.append(c)
    if not hits:
        return None
    hits.sort(key=lambda c: (c.occurred_on or date.min, c.kind, c.summary))
    parts = [
        f"{c.summary} ({c.kind.replace('_', ' ')}, {c.severity} severity"
        + (f", {c.occurred_on.day} {month_name(c.occurred_on)}" if c.occurred_on else "")
        + ")"
        for c in hits
    ]
    return _Finding(
        f"Concern{'s' if len(hits) > 1 else ''} recorded: " + "; ".join(parts),
        {
            "concerns": [
                {
                    "kind": c.kind,
                    "severity": c.severity,
                    "domain": c.domain,
                    "summary": c.summary,
                    "occurred_on": c.occurred_on.isoformat() if c.occurred_on else None,
                }
                for c in hits
            ]
        },
    )


def _approved_plan(ctx: _Ctx, scope: _Scope) -> PlanInput | None:
    plan = scope.plan
    if plan is None or plan.approved_on is None or month_start(plan.approved_on) > ctx.period:
        return None
    return plan


def _plan_measures(ctx: _Ctx, scope: _Scope, plan: PlanInput) -> tuple[MeasureInput, ...]:
    """The measures a plan is judged on: those it targets when it names them, else the
    track's scope."""
    if not plan.measure_codes:
        return scope.measures
    codes = set(plan.measure_codes)
    return tuple(sorted((m for m in ctx.unit.measures if m.code in codes), key=lambda m: m.code))


def _in_review_period(ctx: _Ctx, plan: PlanInput) -> bool:
    """True while a failing plan's review period runs (DOMAIN.md decision 9): escalation
    waits for the review of the period's last month."""
    ends = plan.review_period_ends_on
    return ends is not None and ctx.period < month_start(ends)


def _plan_trajectory_missed(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    plan = _approved_plan(ctx, scope)
    if plan is None or _in_review_period(ctx, plan):
        return None
    in_scope = _plan_measures(ctx, scope, plan)
    if not in_scope:
        return None
    approved = month_start(plan.approved_on)  # type: ignore[arg-type]
    run: list[date] = []
    missing_by_month: dict[date, list[MeasureInput]] = {}
    pts = {m.code: _points(m) for m in in_scope}
    for i in range(1, months_between(approved, ctx.period) + 1):
        period = add_months(approved, i)
        with_data = [
            m
            for m in in_scope
            if (pt := pts[m.code].get(period)) is not None and pt.actual is not None
        ]
        if not with_data:
            continue
        missed = [m for m in with_data if not _meets_bar(m, pts[m.code][period])]
        if missed:
            run.append(period)
            missing_by_month[period] = missed
        else:
            run = []
    if not run or len(run) < _months_n(cond):
        return None
    involved = sorted({m.code for p in run for m in missing_by_month[p]})
    measures = [m for m in in_scope if m.code in involved]
    parts = [
        f"{m.name} ({_values_vs_bar(m, [p for p in run if m in missing_by_month[p]], ctx.period)})"
        for m in measures
    ]
    return _Finding(
        f"The recovery plan approved in {month_name(approved, ctx.period)} has missed its "
        f"trajectory for {plural(len(run), 'consecutive month')} "
        f"({months_phrase(run, ctx.period)}): " + "; ".join(parts),
        {
            "plan_approved_on": plan.approved_on.isoformat(),  # type: ignore[union-attr]
            "months": [_ym(p) for p in run],
            "measures": [_measure_json(m, run) for m in measures],
        },
    )


def _failing_objectives(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    plan = _approved_plan(ctx, scope)
    if plan is None or _in_review_period(ctx, plan):
        return None
    need = _months_n(cond, default=MonthCountRules().escalate_months)
    failing = []
    for m in _plan_measures(ctx, scope, plan):
        run = _bar_miss_run(m, ctx.period, after=plan.approved_on)
        if run and len(run) >= need:
            failing.append((m, run))
    if not failing or not _count_ok(len(failing), cond):
        return None
    approved = month_start(plan.approved_on)  # type: ignore[arg-type]
    parts = [f"{m.name} ({_values_vs_bar(m, run, ctx.period)})" for m, run in failing]
    return _Finding(
        f"{plural(len(failing), 'objective')} ({_count_words(cond)} needed) "
        f"{'has missed its' if len(failing) == 1 else 'have missed their'} "
        f"trajectory for {need} or more consecutive months since the plan was approved in "
        f"{month_name(approved, ctx.period)}: " + "; ".join(parts),
        {
            "plan_approved_on": plan.approved_on.isoformat(),  # type: ignore[union-attr]
            "measures": [_measure_json(m, run) for m, run in failing],
        },
    )


def _plan_actions_delivered(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    if scope.plan is None or not scope.plan.actions_delivered:
        return None
    return _Finding(
        "The recovery plan's agreed actions have been delivered",
        {"plan_track": scope.plan.track, "actions_delivered": True},
    )


def _measures_on_trajectory(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    need = _months_n(cond)
    plan = scope.plan
    if plan is not None and plan.trajectory_met_months >= need:
        return _Finding(
            f"The recovery plan has been on trajectory for "
            f"{plural(plan.trajectory_met_months, 'month')} ({need} needed)",
            {"plan_trajectory_met_months": plan.trajectory_met_months, "needed": need},
        )
    with_data = [(m, _recent(m, ctx)) for m in scope.measures]
    with_data = [(m, [(p, pt) for p, pt in pts if pt.actual is not None]) for m, pts in with_data]
    with_data = [(m, pts) for m, pts in with_data if pts]
    if not with_data:
        return None
    parts, measures = [], []
    for m, pts in with_data:
        last = pts[-need:]
        if len(last) < need or not all(_meets_bar(m, pt) for _, pt in last):
            return None
        periods = [p for p, _ in last]
        parts.append(f"{m.name} ({_values_vs_bar(m, periods, ctx.period)})")
        measures.append(_measure_json(m, periods))
    return _Finding(
        f"Every measure has been on trajectory for the last {plural(need, 'month')}: "
        + "; ".join(parts),
        {"measures": measures, "needed": need},
    )


def _level_held(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    since = ctx.unit.level_since.get(scope.key)
    if since is None:
        return None
    held = months_between(since, ctx.period)
    need = _months_n(cond)
    if held < need:
        return None
    return _Finding(
        f"{scope.label} has been at {ctx.framework.level_title(scope.level)} since "
        f"{month_name(since, ctx.period)} ({plural(held, 'month')}; {need} needed)",
        {"level": scope.level, "since": month_start(since).isoformat(), "months": held},
    )


def _failing_measures_in_domain(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    need = _months_n(cond)
    failing = []
    for m in scope.measures:
        count = ctx.count(m)
        if count.consecutive_under >= need and count.consecutive_under > 0:
            failing.append((m, count))
    if not failing or not _count_ok(len(failing), cond):
        return None
    return _Finding(
        f"{plural(len(failing), 'measure')} in {scope.label} "
        f"{'has' if len(failing) == 1 else 'have'} missed target for {need} or more "
        "consecutive months: " + "; ".join(_under_sentence(ctx, m, c) for m, c in failing),
        {"measures": [_measure_json(m, c.under_periods) for m, c in failing]},
    )


def _under_target(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    need = int(cond.get("at_least", 1))
    hits = [(m, ctx.count(m)) for m in scope.measures]
    hits = [(m, c) for m, c in hits if c.consecutive_under >= need and c.consecutive_under > 0]
    if not hits:
        return None
    return _Finding(
        "; ".join(_under_sentence(ctx, m, c) for m, c in hits),
        {
            "measures": [
                {**_measure_json(m, c.under_periods), "consecutive_under": c.consecutive_under}
                for m, c in hits
            ]
        },
    )


def _failure_forecast(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    horizon = int(cond.get("within_months", MonthCountRules().forecast_horizon))
    parts, measures = [], []
    for m in scope.measures:
        projection = forecast(m, ctx.period, horizon=horizon)
        if projection is None or not projection.fails:
            continue
        first = projection.first_failure
        assert first is not None
        bar = (
            f"its trajectory of {_fmt(m, first.bar)}"
            if first.bar_kind == "trajectory"
            else f"its {_fmt(m, first.bar)} target"
        )
        parts.append(
            f"{m.name} is forecast to miss {bar} in {month_label(first.period, True)} "
            f"(projected {_fmt(m, first.value)}; linear trend on "
            f"{_values(m, list(projection.basis), ctx.period)})"
        )
        entry = _measure_json(m, projection.basis)
        entry["forecast"] = [
            {
                "period": _ym(p.period),
                "value": _r(p.value),
                "bar": _r(p.bar),
                "bar_kind": p.bar_kind,
                "fails": p.fails,
            }
            for p in projection.points
        ]
        measures.append(entry)
    if not parts:
        return None
    return _Finding(
        f"Failure predicted within the next {plural(horizon, 'month')}: " + "; ".join(parts),
        {"within_months": horizon, "measures": measures},
    )


def _no_improvement_from(
    ctx: _Ctx, scope: _Scope, since: date, need: int, what: str
) -> _Finding | None:
    parts, measures = [], []
    for m in scope.measures:
        count = ctx.count(m)
        if count.consecutive_under == 0:
            continue
        test = improvement_since(m, since, ctx.period)
        months_since: list[tuple[date, float]] = test["months_since"]  # type: ignore[assignment]
        if test["improved"] is not False or len(months_since) < need:
            continue
        periods = [p for p, _ in months_since]
        traj = "and its recovery trajectory " if test["trajectory_met"] is False else ""
        mean_since, mean_before = test["mean_since"], test["mean_before"]
        means = (
            f"; average {_fmt(m, mean_since)} since against {_fmt(m, mean_before)} in the "
            f"{plural(len(test['months_before']), 'month')} before"  # type: ignore[arg-type]
            if mean_before is not None
            else ""
        )
        parts.append(
            f"{_under_sentence(ctx, m, count)} {traj}since {what} in "
            f"{month_name(month_start(since), ctx.period)}, without improvement over "
            f"{plural(len(periods), 'month')} ({_values(m, periods, ctx.period)}{means})"
        )
        entry = _measure_json(m, sorted(set(periods) | set(count.under_periods)))
        entry.update(
            mean_since=_r(mean_since),  # type: ignore[arg-type]
            mean_before=_r(mean_before),  # type: ignore[arg-type]
            months_without_improvement=len(periods),
        )
        measures.append(entry)
    if not parts:
        return None
    return _Finding(
        "; ".join(parts), {"since": month_start(since).isoformat(), "measures": measures}
    )


def _without_improvement_since_plan(
    ctx: _Ctx, scope: _Scope, cond: dict[str, Any]
) -> _Finding | None:
    plan = _approved_plan(ctx, scope)
    if plan is None:
        return None
    floor = cond.get("risk_at_least")
    if floor is not None and _severity_rank(plan.risk_level) < _severity_rank(str(floor)):
        return None
    finding = _no_improvement_from(
        ctx,
        scope,
        plan.approved_on,
        int(cond.get("at_least", 1)),
        "the plan was approved",  # type: ignore[arg-type]
    )
    if finding is not None and floor is not None:
        finding.sentence += f" (assessed risk: {plan.risk_level})"
        finding.data["risk_level"] = plan.risk_level
    return finding


def _at_level_without_improvement(
    ctx: _Ctx, scope: _Scope, cond: dict[str, Any]
) -> _Finding | None:
    wanted = cond.get("level")
    if wanted is not None and str(wanted) != scope.level:
        return None
    since = ctx.unit.level_since.get(scope.key)
    if since is None:
        return None
    return _no_improvement_from(
        ctx,
        scope,
        since,
        int(cond.get("at_least", 1)),
        f"reaching {ctx.framework.level_title(scope.level)}",
    )


def _since_report_without_improvement(
    ctx: _Ctx, scope: _Scope, cond: dict[str, Any]
) -> _Finding | None:
    plan = scope.plan
    if plan is None or plan.delivery_group_report_on is None:
        return None
    if month_start(plan.delivery_group_report_on) > ctx.period:
        return None
    return _no_improvement_from(
        ctx,
        scope,
        plan.delivery_group_report_on,
        int(cond.get("at_least", 1)),
        "the delivery group's report",
    )


def _meeting_target(ctx: _Ctx, scope: _Scope, cond: dict[str, Any]) -> _Finding | None:
    need = int(cond.get("at_least", 1))
    counts = [(m, ctx.count(m)) for m in scope.measures]
    counts = [(m, c) for m, c in counts if c.status != "no_data"]
    if not counts or any(c.consecutive_met < need for _, c in counts):
        return None
    parts, measures = [], []
    for m, c in counts:
        periods = [p for p, pt in _recent(m, ctx) if pt.actual is not None][-c.consecutive_met :]
        parts.append(
            f"{m.name} has met its {_fmt(m, m.target)} target for "
            f"{plural(c.consecutive_met, 'consecutive month')} "
            f"({_values(m, periods[-max(need, 3) :], ctx.period)})"
        )
        measures.append(_measure_json(m, periods))
    return _Finding("; ".join(parts), {"measures": measures})


#: signal name -> evaluator (see the module docstring's table).
SIGNALS: dict[str, Signal] = {
    "ytd_overspend": _finance("ytd_overspend", "year-to-date overspend"),
    "forecast_overspend": _finance("forecast_overspend", "forecast outturn overspend"),
    "failing_key_deliverables": _failing_key_deliverables,
    "sustained_deterioration": _sustained_deterioration,
    "trajectory_missed": _trajectory_missed_kinds(None, ""),
    "ministerial_priority_trajectory_missed": _trajectory_missed_kinds(
        ["ministerial_priority"], " (Ministerial Priority)"
    ),
    "concern_recorded": _concern_recorded,
    "plan_trajectory_missed": _plan_trajectory_missed,
    "failing_objectives": _failing_objectives,
    "plan_actions_delivered": _plan_actions_delivered,
    "measures_on_trajectory": _measures_on_trajectory,
    "level_held": _level_held,
    "failing_measures_in_domain": _failing_measures_in_domain,
    "consecutive_months_under_target": _under_target,
    "failure_forecast": _failure_forecast,
    "months_without_improvement_since_plan": _without_improvement_since_plan,
    "months_at_level_without_improvement": _at_level_without_improvement,
    "months_since_delivery_group_report_without_improvement": _since_report_without_improvement,
    "consecutive_months_meeting_target": _meeting_target,
}


# --------------------------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------------------------


def _domains_of(track_name: str) -> tuple[str, ...]:
    return DOMAIN_ALIASES.get(track_name, (track_name,))


def _claimed(framework: Framework, track_name: str, domain: str) -> bool:
    """True if ``domain`` belongs to a plain track of the framework other than ``track_name``."""
    return any(
        domain in _domains_of(t.name)
        for t in framework.tracks.values()
        if not t.per_measure and t.name != track_name
    )


def _scopes(ctx: _Ctx, track: Track, whole_unit: bool) -> list[_Scope]:
    unit, fw = ctx.unit, ctx.framework
    out = []
    if track.per_measure:
        for m in sorted(unit.measures, key=lambda m: m.code):
            key = f"{track.name}:{m.code}"
            out.append(
                _Scope(
                    key=key,
                    track=track,
                    measures=(m,),
                    concerns=tuple(c for c in unit.concerns if c.domain == m.domain),
                    plan=unit.plan_for(key),
                    level=unit.levels.get(key, track.initial),
                    label=f"{m.name} ({m.code})",
                    measure=m,
                )
            )
        return out
    if whole_unit:
        measures, concerns = unit.measures, unit.concerns
    else:
        own = _domains_of(track.name)
        direct = (
            any(m.domain in own for m in unit.measures)
            or any(c.domain in own for c in unit.concerns)
            or track.name in DOMAIN_ALIASES
            or (track.name in fw.domains)
        )
        if direct:
            measures = tuple(m for m in unit.measures if m.domain in own)
            concerns = tuple(c for c in unit.concerns if c.domain in own)
        else:
            # _claimed of each domain, worked out once per domain rather than per measure
            claimed: dict[str, bool] = {}
            for domain in {m.domain for m in unit.measures} | {c.domain for c in unit.concerns}:
                claimed[domain] = _claimed(fw, track.name, domain)
            measures = tuple(m for m in unit.measures if not claimed[m.domain])
            concerns = tuple(c for c in unit.concerns if not claimed[c.domain])
    out.append(
        _Scope(
            key=track.name,
            track=track,
            measures=tuple(sorted(measures, key=lambda m: m.code)),
            concerns=tuple(concerns),
            plan=unit.plan_for(track.name),
            level=unit.levels.get(track.name, track.initial),
            label=f"the {track.title} track",
        )
    )
    return out


# --------------------------------------------------------------------------------------------
# Triggers -> proposals
# --------------------------------------------------------------------------------------------


def _fire(
    ctx: _Ctx, trigger: dict[str, Any], scope: _Scope, unknown: set[str]
) -> list[tuple[dict[str, Any], _Finding]] | None:
    """The findings of the conditions that fired, or ``None`` if the trigger does not fire."""
    findings: list[tuple[dict[str, Any], _Finding]] = []
    for mode in ("when_all", "when_any"):
        conditions = trigger.get(mode)
        if conditions is None:
            continue
        results = []
        for cond in conditions:
            name = str(cond.get("signal"))
            evaluator = SIGNALS.get(name)
            if evaluator is None:
                unknown.add(name)
                results.append((cond, None))
                continue
            results.append((cond, evaluator(ctx, scope, cond)))
        hits = [(c, f) for c, f in results if f is not None]
        if mode == "when_all" and len(hits) != len(results):
            return None
        if mode == "when_any" and not hits:
            return None
        findings.extend(hits)
    return findings or None


def _jsonable(value: Any) -> Any:
    # Exact types first (evidence is mostly str, int, float, dict and list), then the general
    # tests below, which give the same result for these.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): _jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_jsonable(v) for v in value]
    if kind is float:
        return round(value, 4)  # _r
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return _r(value)
    return value


def fingerprint(evidence: dict[str, Any]) -> str:
    """SHA-256 of the evidence's canonical JSON (sorted keys, no spaces)."""
    return sha256_hex(canonical_json(evidence))


def _proposal(
    ctx: _Ctx,
    trigger: dict[str, Any],
    scope: _Scope,
    to_level: str,
    kind: str,
    findings: list[tuple[dict[str, Any], _Finding]],
) -> ProposalDraft:
    fw = ctx.framework
    title = str(trigger.get("title") or trigger["id"]).rstrip(".")
    evidence = _jsonable(
        {
            "framework": fw.name,
            "unit": ctx.unit.code,
            "period": _ym(ctx.period),
            "track": scope.key,
            "from_level": scope.level,
            "to_level": to_level,
            "kind": kind,
            "rule": {
                "id": trigger["id"],
                "title": title,
                "source": trigger.get("source", ""),
                "match": "all" if trigger.get("when_all") else "any",
            },
            "signals": [
                {
                    "signal": cond["signal"],
                    "parameters": {k: v for k, v in cond.items() if k != "signal"},
                    "sentence": finding.sentence,
                    **finding.data,
                }
                for cond, finding in findings
            ],
        }
    )
    verb = "escalating" if kind == "escalate" else "de-escalating"
    summary = (
        f"Proposal for {month_label(ctx.period, True)}: {verb} {ctx.unit.name} on "
        f"{scope.label} from {fw.level_title(scope.level)} to {fw.level_title(to_level)} "
        f"({title}). " + ". ".join(f.sentence for _, f in findings) + "."
    )
    return ProposalDraft(
        track=scope.key,
        from_level=scope.level,
        to_level=to_level,
        rule_id=str(trigger["id"]),
        kind=kind,  # type: ignore[arg-type]
        summary=summary,
        evidence=evidence,
        fingerprint=fingerprint(evidence),
    )


def _applies(trigger: dict[str, Any], track: Track) -> bool:
    named = (trigger.get("propose") or {}).get("track")
    return named is None or named == track.name


def _case_proposals(
    ctx: _Ctx, pairs: list[tuple[dict[str, Any], _Scope]], unknown: set[str]
) -> list[ProposalDraft]:
    """Proposals for one case: ``pairs`` are the applicable triggers (file order), each with
    the scope it is evaluated in (all scopes share the case's key and level)."""
    if not pairs:
        return []
    case = pairs[0][1]
    fw, levels = ctx.framework, case.track.levels
    if case.level not in levels:
        ctx.warnings.append(
            f"{case.key}: level {case.level!r} is not on the {case.track.title} track; "
            "no proposals made for it."
        )
        return []
    current = levels.index(case.level)
    best: tuple[int, dict[str, Any], _Scope, list[Any]] | None = None
    holds = False
    down: tuple[dict[str, Any], _Scope, list[Any]] | None = None
    for trigger, scope in pairs:
        propose = trigger.get("propose") or {}
        if propose.get("down_one_level"):
            if down is None and current > 0:
                findings = _fire(ctx, trigger, scope, unknown)
                if findings:
                    down = (trigger, scope, findings)
            continue
        target = propose.get("to")
        if target is None or str(target) not in levels:
            continue
        index = levels.index(str(target))
        if index < current:
            continue  # a `to` trigger never proposes a move down
        findings = _fire(ctx, trigger, scope, unknown)
        if not findings:
            continue
        holds = True  # the reason for the current level (or a higher one) still holds
        if index == current or fw.transition(case.key, case.level, str(target)) is None:
            continue
        if best is None or index > best[0]:
            best = (index, trigger, scope, findings)
    if best is not None:
        index, trigger, scope, findings = best
        return [_proposal(ctx, trigger, scope, levels[index], "escalate", findings)]
    if down is not None and not holds:
        to_level = levels[current - 1]
        if fw.transition(case.key, case.level, to_level) is not None:
            trigger, scope, findings = down
            return [_proposal(ctx, trigger, scope, to_level, "de_escalate", findings)]
    return []


def _measure_evaluation(ctx: _Ctx, measure: MeasureInput) -> MeasureEvaluation:
    # The rules' internal forms, given the measure's memo: one memo look-up for the measure
    # instead of one per rule and helper (the public functions each look it up). The month
    # count's forecast is the default forecast below, worked out once.
    own = rules_own(measure)
    period = ctx.period
    plan = ctx.unit.plan_for(f"measure:{measure.code}")
    count = ctx.count(measure, plan.approved_on if plan else None)
    return MeasureEvaluation(
        code=measure.code,
        rag_by_period=rules_rags(measure, period, ctx.amber_rule, own),
        month_count=count,
        spc=rules_spc(measure, period, DEFAULT_SPC_RULES, own),
        forecast=rules_forecast(
            measure, period, FORECAST_HORIZON, FORECAST_WINDOW, FORECAST_MIN_POINTS, own
        ),
        data_quality_warnings=rules_dq(measure, period, own),
    )


def finance_thresholds(framework: Framework) -> dict[str, float]:
    """The framework's finance trigger thresholds by signal (iqpf: YTD £0.5m, forecast £1m)."""
    out: dict[str, float] = {}
    for trigger in framework.triggers:
        for mode in ("when_any", "when_all"):
            for cond in trigger.get(mode) or ():
                name = cond.get("signal")
                if name in ("ytd_overspend", "forecast_overspend") and "greater_than" in cond:
                    value = float(cond["greater_than"])
                    out[name] = min(value, out.get(name, value))
    return out


def evaluate_unit(
    unit: UnitInput,
    period: date,
    framework: Framework,
    *,
    amber_rule: AmberRule | None = None,
    measures: bool = True,
) -> UnitEvaluation:
    """Evaluate ``unit`` for the month ``period`` under ``framework``.

    Runs the rules on every measure and on the finance return, then the framework's triggers
    (see the module docstring), and returns the measure evaluations, the finance signals, the
    proposals (escalation / de-escalation drafts with evidence and fingerprint) and warnings.
    ``amber_rule`` overrides the default amber test (:data:`rules.DEFAULT_AMBER_RULE`).

    ``measures=False`` leaves the measure evaluations out (``UnitEvaluation.measures`` is
    empty): the triggers still work out what they ask for (month counts, SPC, forecasts), so
    the proposals, finance signals and warnings are the same, but nothing else is built (each
    measure's RAG by month, and the results no trigger asked for). The monthly review wants
    only the proposals; this is about 40 % of a unit's evaluation (decision 0041).
    """
    with memoized():
        return _evaluate_unit(unit, month_start(period), framework, amber_rule, measures)


def _evaluate_unit(
    unit: UnitInput,
    period: date,
    framework: Framework,
    amber_rule: AmberRule | None,
    with_measures: bool = True,
) -> UnitEvaluation:
    ctx = _Ctx(unit, period, framework, amber_rule or DEFAULT_AMBER_RULE)
    if unit.framework and unit.framework != framework.name:
        ctx.warnings.append(
            f"{unit.code} is recorded under framework {unit.framework!r} but is evaluated "
            f"under {framework.name!r}."
        )
    in_order = sorted(unit.measures, key=lambda m: m.code)
    measures: tuple[MeasureEvaluation, ...] = ()
    if with_measures:
        measures = tuple(_measure_evaluation(ctx, m) for m in in_order)
        for evaluation in measures:
            ctx.warnings.extend(evaluation.data_quality_warnings)
    else:
        # The same warnings, in the same order, without the rest of each measure's evaluation.
        for measure in in_order:
            ctx.warnings.extend(rules_dq(measure, period, rules_own(measure)))
    thresholds = finance_thresholds(framework)
    money_signals = finance_signals(unit.finance, period, thresholds)
    if thresholds and not any(month_start(p.period) == period for p in unit.finance):
        ctx.warnings.append(
            f"{unit.code}: no finance return for {month_label(period, True)}; finance "
            "triggers cannot fire."
        )

    proposals: list[ProposalDraft] = []
    unknown: set[str] = set()
    if framework.applies_to_unit_kinds and unit.kind not in framework.applies_to_unit_kinds:
        ctx.warnings.append(
            f"{unit.code}: the {framework.title} framework does not apply to unit kind "
            f"{unit.kind!r}; no proposals made."
        )
    else:
        triggers = list(framework.triggers)
        for track in framework.tracks.values():
            applicable = [t for t in triggers if _applies(t, track)]
            whole = _scopes(ctx, track, whole_unit=True)
            part = _scopes(ctx, track, whole_unit=False)
            for scope_whole, scope_part in zip(whole, part, strict=True):
                # A trigger naming its track sees the whole unit; one naming no track sees the
                # track's share of the unit (module docstring, "Tracks and scope").
                pairs = [
                    (t, scope_whole if (t.get("propose") or {}).get("track") else scope_part)
                    for t in applicable
                ]
                proposals.extend(_case_proposals(ctx, pairs, unknown))
    for name in sorted(unknown):
        ctx.warnings.append(f"The engine does not know the signal {name!r}; it never fires.")
    return UnitEvaluation(
        unit_code=unit.code,
        period=period,
        measures=measures,
        finance_signals=money_signals,
        proposals=tuple(proposals),
        warnings=tuple(dict.fromkeys(ctx.warnings)),
    )
