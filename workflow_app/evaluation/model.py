"""Input and output dataclasses of the evaluation engine (all frozen, no Flask/SQLAlchemy).

The service layer loads a unit's measures, finance returns, concerns and plans from the
database into these classes, calls :func:`workflow_app.evaluation.evaluate_unit`, and stores
the :class:`ProposalDraft` objects it returns as pending decisions (DOMAIN.md, "the engine
proposes; people decide").

Conventions
-----------
* Months are ``date`` objects on the first of the month (``period``).
* Measure values use the measure's own unit; percentages are 0-100 (``81.0`` is 81%).
* Finance variances are GBP with **positive = overspend** (DOMAIN.md, decision 5).
* A missing actual (``actual=None``, or a month absent from the series) is a *gap month*
  (DOMAIN.md, decision 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

__all__ = [
    "KEY_DELIVERABLE_KINDS",
    "SEVERITY_ORDER",
    "AmberRule",
    "ConcernInput",
    "Direction",
    "FinancePoint",
    "FinanceSignal",
    "Forecast",
    "ForecastPoint",
    "MeasureEvaluation",
    "MeasureInput",
    "MonthCount",
    "MonthPoint",
    "PlanInput",
    "ProposalDraft",
    "Rag",
    "SpcResult",
    "SpcSignal",
    "UnitEvaluation",
    "UnitInput",
]

Rag = Literal["green", "amber", "red"]
Direction = Literal["higher_is_better", "lower_is_better"]
#: Which test makes a missed month amber (DOMAIN.md, decision 3): the month's trajectory value
#: met, the measure's tolerance, or either.
AmberRule = Literal["trajectory", "tolerance", "either"]

#: Measure kinds counted as *key deliverables* by the ``failing_key_deliverables`` signal.
#: Decision: only ``key_deliverable``. National targets, local trajectories and Ministerial
#: priorities have their own signals in the framework files (``trajectory_missed``,
#: ``ministerial_priority_trajectory_missed``), so counting them here too would count the same
#: failure twice.
KEY_DELIVERABLE_KINDS: frozenset[str] = frozenset({"key_deliverable"})

#: Concern severities, lowest first (workflow_app/models/cases.py CONCERN_SEVERITIES); used by
#: ``severity_at_least`` and ``risk_at_least`` parameters.
SEVERITY_ORDER: tuple[str, ...] = ("low", "moderate", "high", "serious")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


# slots: a review builds one per measure and month (125,000 for 100 units x 50 measures x
# 24 months); without a __dict__ each is smaller, quicker to make and one object for the GC.
@dataclass(frozen=True, slots=True)
class MonthPoint:
    """One month of a measure: the actual (``None`` = no data) and the trajectory value
    (the planned value for that month, ``None`` when no trajectory is set). Months after
    the evaluated period may carry a trajectory only; the forecast compares against it."""

    period: date
    actual: float | None
    trajectory: float | None = None


@dataclass(frozen=True)
class MeasureInput:
    """A measure (KPI) of a unit with its monthly series.

    ``tolerance`` is absolute, in the measure's unit: a miss by no more than it is amber when
    the framework's amber rule allows (DOMAIN.md, decision 3).
    """

    code: str
    name: str
    domain: str
    kind: str
    target: float
    direction: Direction
    tolerance: float | None = None
    unit_of_measure: str = "count"
    series: tuple[MonthPoint, ...] = ()

    @property
    def is_key_deliverable(self) -> bool:
        """True for ``kind == 'key_deliverable'`` (see :data:`KEY_DELIVERABLE_KINDS`)."""
        return self.kind in KEY_DELIVERABLE_KINDS

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher_is_better"


@dataclass(frozen=True)
class FinancePoint:
    """A unit's finance return for one month (GBP; positive = overspend, DOMAIN.md dec. 5)."""

    period: date
    ytd_variance: float
    forecast_variance: float


@dataclass(frozen=True)
class ConcernInput:
    """Qualitative intelligence recorded against the unit (DOMAIN.md, decision 6). The
    service layer passes the concerns that are live for the review; a concern that occurred
    after the evaluated month is ignored."""

    kind: str
    severity: str
    domain: str
    summary: str
    occurred_on: date | None = None


@dataclass(frozen=True)
class PlanInput:
    """What is known about the recovery / improvement plan on one track.

    ``track`` is the case's track key (``performance``, ``delivery``, ``measure:RTT18``).
    ``trajectory_met_months``: consecutive months (to the evaluated period) the plan has been
    on trajectory, as assessed by the performance team. ``risk_level``: the assessed risk of
    the failure (seed 002, "Performance Improvement": "or more quickly if assessed risk is
    high"), one of :data:`SEVERITY_ORDER`. ``delivery_group_report_on``: when the delivery
    group reported on risks to delivery (seed 002, "Where System Performance Assurance is not
    received"). ``measure_codes``: the measures the plan targets; when given, the plan's own
    signals (``plan_trajectory_missed``, ``failing_objectives``) judge those measures rather
    than every measure in the track's scope. ``review_period_ends_on``: the last day of the
    review period set on a failing plan (DOMAIN.md decision 9); until the review of that
    day's month, those two signals stay quiet, so escalation is proposed only when the plan
    is still failing at the end of the period.
    """

    track: str
    approved_on: date | None = None
    actions_delivered: bool = False
    trajectory_met_months: int = 0
    risk_level: str | None = None
    delivery_group_report_on: date | None = None
    measure_codes: tuple[str, ...] = ()
    review_period_ends_on: date | None = None


@dataclass(frozen=True)
class UnitInput:
    """A unit and everything the engine needs to evaluate it for one month.

    ``levels``: track key -> current level of the unit's case on that track; a track with no
    entry is taken to be at the track's lowest level (no case opened yet).
    ``level_since``: track key -> the month the case reached its current level (for the
    ``level_held`` and ``months_at_level_without_improvement`` signals).
    """

    code: str
    name: str
    kind: str
    framework: str
    levels: Mapping[str, str] = field(default_factory=dict)
    measures: tuple[MeasureInput, ...] = ()
    finance: tuple[FinancePoint, ...] = ()
    concerns: tuple[ConcernInput, ...] = ()
    plans: tuple[PlanInput, ...] = ()
    level_since: Mapping[str, date] = field(default_factory=dict)

    def plan_for(self, track_key: str) -> PlanInput | None:
        """The plan recorded for a track, if any (the last one given wins)."""
        found = None
        for plan in self.plans:
            if plan.track == track_key:
                found = plan
        return found


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthCount:
    """Month-count position of one measure (seed 002 "Performance Improvement"; DOMAIN.md
    decision 4).

    ``status``: ``no_data``, ``performing``, ``monitor``, ``improvement_plan``,
    ``first_level`` or ``second_level``. ``under_periods``: the months of the current run of
    missed targets (gap months excluded). ``improvement_since_plan``: ``None`` without a plan
    (or no month since it), else the decision 4 test.
    """

    status: str
    consecutive_under: int
    missing_periods: tuple[date, ...] = ()
    improvement_since_plan: bool | None = None
    forecast_fails: bool = False
    under_periods: tuple[date, ...] = ()
    consecutive_met: int = 0
    months_without_improvement: int = 0


@dataclass(frozen=True)
class SpcSignal:
    """A special-cause signal on an XmR chart (NHS England "Making Data Count").

    ``rule``: ``beyond_limits``, ``shift`` (run of 7+ on one side of the mean), ``trend``
    (6+ rising or falling), ``two_of_three`` (2 of 3 beyond 2 sigma on the same side).
    ``side``: ``high`` or ``low`` (for a trend: ``rising`` or ``falling``).
    """

    rule: str
    periods: tuple[date, ...]
    kind: Literal["improvement", "concern"]
    side: str = ""


@dataclass(frozen=True)
class SpcResult:
    """XmR chart of a measure's series: centre line, natural process limits, signals."""

    mean: float
    ucl: float
    lcl: float
    signals: tuple[SpcSignal, ...] = ()
    mr_bar: float = 0.0
    periods: tuple[date, ...] = ()


@dataclass(frozen=True)
class ForecastPoint:
    """A projected month: the value, the bar it is compared with (the month's trajectory
    value when set, else the target) and whether it misses it."""

    period: date
    value: float
    bar: float
    bar_kind: Literal["trajectory", "target"]
    fails: bool


@dataclass(frozen=True)
class Forecast:
    """Linear trend (least squares) on the last months' actuals, projected forward."""

    points: tuple[ForecastPoint, ...]
    slope: float = 0.0
    basis: tuple[date, ...] = ()

    @property
    def fails(self) -> bool:
        """True if any projected month misses its bar."""
        return any(p.fails for p in self.points)

    @property
    def first_failure(self) -> ForecastPoint | None:
        return next((p for p in self.points if p.fails), None)


@dataclass(frozen=True)
class MeasureEvaluation:
    """Everything the engine worked out for one measure."""

    code: str
    rag_by_period: dict[date, Rag | None]
    month_count: MonthCount
    spc: SpcResult | None
    forecast: Forecast | None
    data_quality_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinanceSignal:
    """A finance threshold crossed: ``kind`` is ``ytd_overspend`` or ``forecast_overspend``;
    ``value`` is strictly greater than ``threshold``."""

    kind: str
    period: date
    value: float
    threshold: float


@dataclass(frozen=True)
class ProposalDraft:
    """An escalation or de-escalation proposal with its evidence; never a level change.

    ``evidence`` is JSON-serialisable; ``fingerprint`` is the SHA-256 of its canonical JSON,
    so revised data that changes the evidence changes the fingerprint (DOMAIN.md dec. 10).
    """

    track: str
    from_level: str
    to_level: str
    rule_id: str
    kind: Literal["escalate", "de_escalate"]
    summary: str
    evidence: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True)
class UnitEvaluation:
    """The result of evaluating one unit for one month."""

    unit_code: str
    period: date
    measures: tuple[MeasureEvaluation, ...]
    finance_signals: tuple[FinanceSignal, ...]
    proposals: tuple[ProposalDraft, ...]
    warnings: tuple[str, ...] = ()
