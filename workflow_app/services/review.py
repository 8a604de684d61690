"""The escalation review of a month: load the data, evaluate it, store the proposals.

The evaluation itself is a pure function (``workflow_app.evaluation``); this module turns
database rows into its inputs and its proposal drafts into pending decisions, never
changing a level (DESIGN.md principle 2). Re-running the review for the same month creates
nothing twice; revised data that changes a pending proposal's evidence supersedes it with
a new, linked one, and a decided proposal whose evidence changed is flagged to its decider
(DOMAIN.md decision 10).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from state_machines import get_framework
from state_machines.framework import Framework
from workflow_app.clock import utcnow
from workflow_app.evaluation import (
    ConcernInput,
    FinancePoint,
    MeasureInput,
    MonthPoint,
    ProposalDraft,
    UnitEvaluation,
    UnitInput,
    evaluate_unit,
)
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, Decision, EscalationCase
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Person, Unit
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.services.audit import record_event

# How many months of history the evaluation sees (SPC needs a baseline).
HISTORY_MONTHS = 24

#: The inputs run_review read, by (unit id, month), while it runs earned autonomy: valid
#: because nothing the review writes is read into them, except a per-measure case it opens
#: (a new level), so a unit that had one opened is left out.
_review_inputs: ContextVar[dict[tuple[int, date], UnitInput] | None] = ContextVar(
    "review_inputs", default=None
)


@dataclass
class ReviewOutcome:
    """What a review run did."""

    period: date
    units: int = 0
    created: list[Decision] = field(default_factory=list)
    superseded: list[Decision] = field(default_factory=list)
    unchanged: int = 0
    flagged: list[Decision] = field(default_factory=list)
    evaluations: list[UnitEvaluation] = field(default_factory=list)
    plans: list = field(default_factory=list)  # plan_delivery.PlanAssessment


def _months_back(period: date, n: int) -> date:
    month = period.year * 12 + period.month - 1 - n
    return date(month // 12, month % 12 + 1, 1)


def latest_actuals(measure_ids: list[int], start: date, end: date) -> dict[tuple[int, date], float]:
    """The current (highest-revision) actual of each measure-month in [start, end]."""
    if not measure_ids:
        return {}
    latest = (
        sa.select(
            MonthlyActual.measure_id,
            MonthlyActual.period,
            sa.func.max(MonthlyActual.revision).label("revision"),
        )
        .where(
            MonthlyActual.measure_id.in_(measure_ids),
            MonthlyActual.period.between(start, end),
        )
        .group_by(MonthlyActual.measure_id, MonthlyActual.period)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(MonthlyActual.measure_id, MonthlyActual.period, MonthlyActual.value).join(
            latest,
            sa.and_(
                MonthlyActual.measure_id == latest.c.measure_id,
                MonthlyActual.period == latest.c.period,
                MonthlyActual.revision == latest.c.revision,
            ),
        )
    )
    return {(m, p): float(v) for m, p, v in rows}


def unit_input(unit: Unit, period: date) -> UnitInput:
    """Everything the evaluation needs to know about ``unit`` up to ``period``.

    Inside :func:`run_review` the inputs it has just read are reused (earned autonomy reads
    them again for every unit); elsewhere they are read from the database.
    """
    reused = reused_input(unit, period)
    if reused is not None:
        return reused
    return unit_inputs([unit], period)[unit.id]


def reused_input(unit: Unit, period: date) -> UnitInput | None:
    """The inputs :func:`run_review` has just read for ``unit``, while it runs earned
    autonomy; else ``None``."""
    reused = _review_inputs.get()
    if reused is None:
        return None
    return reused.get((unit.id, period))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a review loads and evaluates.

    A month's review of 100 units x 50 measures makes a few hundred thousand short-lived,
    acyclic objects (rows, points, results); each burst of allocations set off collections
    that scanned the whole heap, about 40 % of the review's time. Reference counting still
    frees those objects at once; the collector is enabled again afterwards (if it was on)
    and collects anything cyclic then.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def unit_inputs(units: list[Unit], period: date) -> dict[int, UnitInput]:
    """:func:`unit_input` for many units at once, by unit id: the same inputs, read with a
    handful of set-based queries (measures, the 24-month window of actuals and trajectories,
    finance, concerns, cases, which units have plans) instead of several per unit.

    Orders are the ones :func:`unit_input` gives: measures by code, finance by month,
    concerns and cases by id (``unit_input`` leaves those two to the database).
    """
    if not units:
        return {}
    start = _months_back(period, HISTORY_MONTHS - 1)
    months = [_months_back(period, n) for n in range(HISTORY_MONTHS - 1, -1, -1)]
    ids = [u.id for u in units]
    out: dict[int, UnitInput] = {}
    for chunk in _chunked(ids):
        out.update(_unit_inputs(chunk, {u.id: u for u in units}, start, period, months))
    return out


class _RawValue(sa.types.TypeDecorator):
    """A column read as the driver gives it, without the type's result processing."""

    impl = sa.types.NullType
    cache_ok = True


_RAW = _RawValue()
#: Decimal places of the value columns (``models.measures.VALUE``, Numeric(14, 4)).
_SCALE = MonthlyActual.__table__.c.value.type.scale


def _number(raw) -> float:
    """``float()`` of what the Numeric value column returns for the driver's raw value: a
    Decimal as is (PostgreSQL); a float or int (SQLite) as SQLAlchemy reads it, through its
    ``%.<scale>f`` text, which ``round(raw, scale)`` gives exactly (both round the binary
    value correctly to that many places)."""
    if raw is None or isinstance(raw, Decimal):
        return float(raw)  # None fails here, as float(None) did before
    return float(round(raw, _SCALE))


def _slots(months: list[date]) -> dict:
    """Month -> index in the window, by the raw period the driver returns: a ``date``
    (PostgreSQL) or SQLite's ``YYYY-MM-DD`` text."""
    out: dict = {p: i for i, p in enumerate(months)}
    out.update((p.isoformat(), i) for i, p in enumerate(months))
    return out


def _odd_slot(slot: dict, raw) -> int | None:
    """The slot of a raw period not found as is (text in another form): parsed as
    SQLAlchemy's Date would, and remembered."""
    if not isinstance(raw, str):
        return None
    dialect = db.session.get_bind().dialect
    parse = sa.Date().dialect_impl(dialect).result_processor(dialect, None)
    day = parse(raw) if parse is not None else date.fromisoformat(raw)
    slot[raw] = slot.get(day)
    return slot[raw]


def _chunked(ids: list[int], size: int = 500):
    for first in range(0, len(ids), size):
        yield ids[first : first + size]


@dataclass(frozen=True)
class SeriesSpan:
    """Some units' active measures, with their actuals and trajectory values over a run of
    consecutive months, read once: :func:`review_months` reviews month after month from it
    instead of reading each month's 24-month window again (on a 100 x 50 body that read was
    about a third of a month's review)."""

    months: tuple[date, ...]
    unit_ids: frozenset[int]
    actuals: dict[int, list[float | None]]
    trajectories: dict[int, list[float | None]]
    measures: list = field(default_factory=list, repr=False)  # _measure_rows of the units
    _points: dict[int, tuple[MonthPoint, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, unit_ids: list[int], first: date, last: date) -> SeriesSpan:
        """Read the span from ``first``'s month to ``last``'s, in chunks of units."""
        months = tuple(_months_back(last, n) for n in range(_months_apart(first, last), -1, -1))
        actuals: dict[int, list[float | None]] = {}
        trajectories: dict[int, list[float | None]] = {}
        measures: list = []
        for chunk in _chunked(sorted(set(unit_ids))):
            chunk_actuals, chunk_trajectories = _read_series(chunk, list(months))
            actuals.update(chunk_actuals)
            trajectories.update(chunk_trajectories)
            measures.extend(_measure_rows(chunk))  # chunks by unit id: the order holds
        return cls(months, frozenset(unit_ids), actuals, trajectories, measures)

    @cached_property
    def statics(self) -> dict[int, tuple]:
        """Each measure's :class:`MeasureInput` fields before its series, by measure id."""
        return {m.id: _static_fields(m) for m in self.measures}

    def measure_rows(self, unit_ids: list[int]) -> list:
        """The span's measures of these units, as :func:`_measure_rows` reads them."""
        if len(unit_ids) == len(self.unit_ids):  # covers() holds: the same units
            return self.measures
        wanted = set(unit_ids)
        return [m for m in self.measures if m.unit_id in wanted]

    def covers(self, unit_ids: list[int], months: list[date]) -> bool:
        """Whether these units' window of ``months`` lies inside the span."""
        return (
            bool(self.months)
            and self.months[0] <= months[0]
            and months[-1] <= self.months[-1]
            and self.unit_ids.issuperset(unit_ids)
        )

    def series(self, measure_id: int, months: list[date]) -> tuple[MonthPoint, ...]:
        """The measure's points over ``months`` (inside the span), cut from points built once
        for the whole span: a month's point is the same object in every window that holds
        it (points are frozen), so each is built once, not once per month reviewed."""
        points = self._points.get(measure_id)
        if points is None:
            empty = (None,) * len(self.months)
            points = self._points[measure_id] = tuple(
                map(
                    MonthPoint,
                    self.months,
                    self.actuals.get(measure_id, empty),
                    self.trajectories.get(measure_id, empty),
                )
            )
        first = _months_apart(self.months[0], months[0])
        return points[first : first + len(months)]

    def window(
        self, measure_ids: list[int], months: list[date]
    ) -> tuple[dict[int, list[float | None]], dict[int, list[float | None]]]:
        """The measures' values over ``months`` (inside the span), as :func:`_read_series`
        gives them; a measure with no value at all in the span is left out, as it is there."""
        first = _months_apart(self.months[0], months[0])
        last = first + len(months)
        return (
            {m: self.actuals[m][first:last] for m in measure_ids if m in self.actuals},
            {m: self.trajectories[m][first:last] for m in measure_ids if m in self.trajectories},
        )


#: The span :func:`review_months` has read, while one of its months is reviewed.
_series_span: ContextVar[SeriesSpan | None] = ContextVar("review_series_span", default=None)


def _months_apart(start: date, end: date) -> int:
    return (end.year * 12 + end.month) - (start.year * 12 + start.month)


def _read_series(
    ids: list[int], months: list[date]
) -> tuple[dict[int, list[float | None]], dict[int, list[float | None]]]:
    """The active measures' actuals (the highest revision of each month) and trajectory
    values of units ``ids`` over the consecutive ``months``, by measure id: one list each
    with a slot per month (``None`` where there is no value)."""
    measure = Measure.__table__.c
    in_window = sa.and_(measure.unit_id.in_(ids), measure.is_active.is_(True))
    start, end = months[0], months[-1]
    # Each measure's values as a list with one slot per month of the window (a month not
    # in the list, e.g. not the first of a month, is never looked up, as before).
    slot = _slots(months)
    # The window's rows are read raw (period and value as the driver gives them) and
    # converted here: SQLAlchemy's Date and Numeric processing per row (on SQLite a parse
    # and a Decimal for each of the ~120,000 rows of a 100 x 50 review) cost more than the
    # rest of the read. _number gives the float of what the Numeric column would return.
    raw_period = sa.type_coerce(MonthlyActual.__table__.c.period, sa.String)
    # Every revision in the window; the highest one of each measure-month wins.
    actual = MonthlyActual.__table__.c
    actuals: dict[int, list[float | None]] = {}
    revisions: dict[int, list[int]] = {}
    number = _number
    for measure_id, month, revision, value in db.session.execute(
        sa.select(
            actual.measure_id, raw_period, actual.revision, sa.type_coerce(actual.value, _RAW)
        )
        .join(Measure.__table__, measure.id == actual.measure_id)
        .where(in_window, actual.period.between(start, end))
    ).all():  # all() fetches in one call; iterating the result fetches row by row
        i = slot.get(month)
        if i is None and (i := _odd_slot(slot, month)) is None:
            continue
        if measure_id not in actuals:
            actuals[measure_id] = [None] * len(months)
            revisions[measure_id] = [0] * len(months)
        if revision > revisions[measure_id][i]:
            revisions[measure_id][i] = revision
            actuals[measure_id][i] = number(value)
    trajectory = TrajectoryValue.__table__.c
    trajectories: dict[int, list[float | None]] = {}
    for measure_id, month, value in db.session.execute(
        sa.select(
            trajectory.measure_id,
            sa.type_coerce(trajectory.period, sa.String),
            sa.type_coerce(trajectory.value, _RAW),
        )
        .join(Measure.__table__, measure.id == trajectory.measure_id)
        .where(in_window, trajectory.period.between(start, end))
    ).all():
        i = slot.get(month)
        if i is None:
            i = _odd_slot(slot, month)
        if i is not None:
            trajectories.setdefault(measure_id, [None] * len(months))[i] = number(value)
    return actuals, trajectories


def _measure_rows(ids: list[int]) -> list:
    """The active measures of units ``ids`` with their domain's code, by unit and code."""
    from workflow_app.models.org import Domain

    measure = Measure.__table__.c
    return db.session.execute(
        sa.select(
            measure.id,
            measure.unit_id,
            measure.code,
            measure.name,
            Domain.code.label("domain"),
            measure.kind,
            measure.target,
            measure.direction,
            measure.tolerance,
            measure.unit_of_measure,
        )
        .join(Domain, Domain.id == measure.domain_id)
        .where(measure.unit_id.in_(ids), measure.is_active.is_(True))
        .order_by(measure.unit_id, measure.code)
    ).all()


def _static_fields(row) -> tuple:
    """A measure row's fields of :class:`MeasureInput` before its series, in field order:
    the same every month, so a span works them out once per measure."""
    return (
        row.code,
        row.name,
        row.domain,
        row.kind,
        float(row.target),
        row.direction,
        float(row.tolerance) if row.tolerance is not None else None,
        row.unit_of_measure,
    )


class _Lazy:
    """A value worked out the first time it is asked for (then kept)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make: Callable[[], Any] | None = make
        self._value: Any = None

    def get(self) -> Any:
        if self._make is not None:
            self._value, self._make = self._make(), None
        return self._value


def _unit_inputs(
    ids: list[int], by_id: dict[int, Unit], start: date, period: date, months: list[date]
) -> dict[int, UnitInput]:
    from workflow_app.models.org import Domain
    from workflow_app.models.plans import RecoveryPlan
    from workflow_app.services.plan_delivery import COUNTED_STATUSES, plans_for_review

    span = _series_span.get()
    if span is not None and span.covers(ids, months):
        # Inside review_months: the measures and their values come from the span (the
        # values as lists only for a unit whose plan replaces some trajectory values).
        measures = span.measure_rows(ids)
        statics = span.statics
        values = _Lazy(lambda: span.window([m.id for m in measures], months))

        def cut(measure_id: int) -> tuple[MonthPoint, ...]:
            return span.series(measure_id, months)

    else:
        measures = _measure_rows(ids)
        statics = {m.id: _static_fields(m) for m in measures}
        read = _read_series(ids, months)
        values = _Lazy(lambda: read)
        cut = None
    slot = _slots(months)
    finance: dict[int, dict[date, tuple[int, FinancePoint]]] = {}
    position = FinancePosition.__table__.c
    for unit_id, month, revision, ytd, forecast in db.session.execute(
        sa.select(
            position.unit_id,
            position.period,
            position.revision,
            position.ytd_variance,
            position.forecast_variance,
        ).where(position.unit_id.in_(ids), position.period.between(start, period))
    ):
        known = finance.setdefault(unit_id, {}).get(month)
        if known is None or revision >= known[0]:
            finance[unit_id][month] = (revision, FinancePoint(month, float(ytd), float(forecast)))
    concerns: dict[int, list[ConcernInput]] = {}
    for concern, domain in db.session.execute(
        sa.select(Concern, Domain.code)
        .join(Domain, Domain.id == Concern.domain_id)
        .where(Concern.unit_id.in_(ids))
        .order_by(Concern.id)
    ).tuples():
        concerns.setdefault(concern.unit_id, []).append(
            ConcernInput(
                kind=concern.kind,
                severity=concern.severity,
                domain=domain,
                summary=concern.summary,
                occurred_on=concern.occurred_on or concern.recorded_at.date(),
            )
        )
    case = EscalationCase.__table__.c
    cases: dict[int, list] = {}
    for row in db.session.execute(
        sa.select(case.unit_id, case.framework, case.track, case.level, case.level_since)
        .where(case.unit_id.in_(ids))
        .order_by(case.id)
    ):
        if row.framework == by_id[row.unit_id].framework:
            cases.setdefault(row.unit_id, []).append(row)
    # Only a unit with a counted plan on one of its cases can have plans for the review.
    with_plans = set(
        db.session.scalars(
            sa.select(case.unit_id)
            .join(RecoveryPlan, RecoveryPlan.case_id == case.id)
            .where(
                case.unit_id.in_(ids),
                RecoveryPlan.status.in_(COUNTED_STATUSES),
                RecoveryPlan.approved_at.is_not(None),
            )
            .distinct()
        )
    )
    no_values = [None] * len(months)
    by_unit: dict[int, list] = {}
    for row in measures:
        by_unit.setdefault(row.unit_id, []).append(row)
    out = {}
    for unit_id in ids:
        unit = by_id[unit_id]
        plans: tuple = ()
        planned: dict[tuple[int, date], float] = {}
        if unit_id in with_plans:
            plans, planned = plans_for_review(unit, start, period)
        unit_trajectories: dict[int, list[float | None]] | None = None  # the measures' own
        replanned: set[int] = set()
        if planned:  # a plan's planned values are its measures' trajectory for those months
            unit_trajectories = dict(values.get()[1])
            for (measure_id, month), value in planned.items():
                i = slot.get(month)
                if i is not None:
                    column = list(unit_trajectories.get(measure_id) or [None] * len(months))
                    column[i] = value
                    unit_trajectories[measure_id] = column
                    replanned.add(measure_id)

        # Bound as defaults: each unit's function is used at once, in its own iteration.
        def series(
            measure_id: int, replanned=replanned, trajectories=unit_trajectories
        ) -> tuple[MonthPoint, ...]:
            if cut is not None and measure_id not in replanned:
                return cut(measure_id)
            actuals, own_trajectories = values.get()
            return tuple(
                map(
                    MonthPoint,
                    months,
                    actuals.get(measure_id, no_values),
                    (own_trajectories if trajectories is None else trajectories).get(
                        measure_id, no_values
                    ),
                )
            )

        measure_inputs = tuple(
            MeasureInput(*statics[m.id], series(m.id)) for m in by_unit.get(unit_id, ())
        )
        unit_cases = cases.get(unit_id, [])
        out[unit_id] = UnitInput(
            code=unit.code,
            name=unit.name,
            kind=unit.kind,
            framework=unit.framework,
            levels={c.track: c.level for c in unit_cases},
            measures=measure_inputs,
            finance=tuple(point for _, (_, point) in sorted(finance.get(unit_id, {}).items())),
            concerns=tuple(concerns.get(unit_id, ())),
            plans=plans,
            level_since={c.track: c.level_since.date() for c in unit_cases},
        )
    return out


@dataclass
class _Known:
    """What :func:`store_proposals` looks up, read for a whole month's review at once: the
    units' cases by (unit id, track), the dedupe keys already taken, and the engine's
    proposals of the month by (case id, rule, level proposed)."""

    cases: dict[tuple[int, str], EscalationCase]
    keys: set[str]
    earlier: dict[tuple[int, str, str], list[Decision]]


def _known(units: list[Unit], evaluations: list[UnitEvaluation], period: date) -> _Known:
    """The look-ups of :func:`store_proposals` for these units' drafts, in a few queries."""
    by_id = {unit.id: unit for unit in units}
    cases: dict[tuple[int, str], EscalationCase] = {}
    for chunk in _chunked(list(by_id)):
        for case in db.session.scalars(
            sa.select(EscalationCase)
            .where(EscalationCase.unit_id.in_(chunk))
            .order_by(EscalationCase.id)
        ):
            if case.framework == by_id[case.unit_id].framework:
                cases.setdefault((case.unit_id, case.track), case)
    keys: list[str] = []
    for unit, evaluation in zip(units, evaluations, strict=True):
        for draft in evaluation.proposals:
            case = cases.get((unit.id, draft.track))
            if case is not None:
                keys.append(
                    _proposal_key(case, period, draft.rule_id, draft.to_level, draft.fingerprint)
                )
    taken: set[str] = set()
    for first in range(0, len(keys), 500):
        taken.update(
            db.session.scalars(
                sa.select(Decision.dedupe_key).where(
                    Decision.dedupe_key.in_(keys[first : first + 500])
                )
            )
        )
    earlier: dict[tuple[int, str, str], list[Decision]] = {}
    case_ids = [case.id for case in cases.values()]
    for chunk in _chunked(case_ids):
        for decision in db.session.scalars(
            sa.select(Decision)
            .where(
                Decision.case_id.in_(chunk),
                Decision.origin == "engine",
                Decision.period == period,
            )
            .order_by(Decision.id)
        ):
            earlier.setdefault((decision.case_id, decision.rule_id, decision.to_level), []).append(
                decision
            )
    return _Known(cases, taken, earlier)


def _case_for(
    unit: Unit, track: str, opened: set[int] | None = None, known: _Known | None = None
) -> EscalationCase:
    if known is not None and (unit.id, track) in known.cases:
        return known.cases[(unit.id, track)]
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id,
            EscalationCase.framework == unit.framework,
            EscalationCase.track == track,
        )
    )
    if case is None:  # a per-measure track (framework C) seen for the first time
        framework = get_framework(unit.framework)
        case = EscalationCase(
            unit=unit, framework=unit.framework, track=track, level=framework.initial_level(track)
        )
        db.session.add(case)
        db.session.flush()
        if opened is not None:
            opened.add(unit.id)
    if known is not None:
        known.cases[(unit.id, track)] = case
    return case


def _proposal_key(case: EscalationCase, period: date, rule_id: str, to: str, fp: str) -> str:
    return f"proposal:{case.id}:{period:%Y-%m}:{rule_id}:{to}:{fp[:16]}"


def store_proposals(
    unit: Unit,
    evaluation: UnitEvaluation,
    period: date,
    outcome: ReviewOutcome,
    now: datetime,
    *,
    opened: set[int] | None = None,
    pending_units: set[int] | None = None,
    known: _Known | None = None,
) -> None:
    """Turn the evaluation's drafts into pending decisions (see the module docstring).

    ``opened`` collects the ids of units a new (per-measure) case was opened for.
    ``pending_units``, when given, holds every unit that had a pending engine proposal for
    ``period`` before the review began: another unit has none that could be stale.
    ``known``, when given, holds the look-ups read for the whole review (:func:`_known`);
    without it they are read here, per draft.

    The unit's new proposals are flushed together; their audit events (and any e-mails)
    follow in the same order as proposal by proposal: supersede, flags, then "created".
    """
    drafted = _add_proposals(unit, evaluation, period, outcome, now, opened=opened, known=known)
    if drafted.made:
        db.session.flush()  # one INSERT round for the unit's proposals, ids in order
    _record_proposals(drafted, period, outcome, now, pending_units=pending_units)


@dataclass
class _Drafted:
    """A unit's proposals added to the session by :func:`_add_proposals`, not yet flushed:
    each with its draft, the pending proposal it supersedes and the earlier ones of its
    rule; and every (case, rule, level) that fired."""

    unit: Unit
    framework: Framework
    made: list[tuple[Decision, ProposalDraft, Decision | None, list[Decision]]]
    fired: set[tuple[int, str, str]]


def _add_proposals(
    unit: Unit,
    evaluation: UnitEvaluation,
    period: date,
    outcome: ReviewOutcome,
    now: datetime,
    *,
    opened: set[int] | None,
    known: _Known | None,
) -> _Drafted:
    """The first half of :func:`store_proposals`: the unit's new proposals added to the
    session (the caller flushes them, so they have ids, before :func:`_record_proposals`)."""
    framework = get_framework(unit.framework)
    fired: set[tuple[int, str, str]] = set()
    made: list[tuple[Decision, ProposalDraft, Decision | None, list[Decision]]] = []
    for draft in evaluation.proposals:
        case = _case_for(unit, draft.track, opened, known)
        fired.add((case.id, draft.rule_id, draft.to_level))
        key = _proposal_key(case, period, draft.rule_id, draft.to_level, draft.fingerprint)
        if known is not None:
            # Read for the month; a case opened just now has no proposals (its id is new).
            taken = key in known.keys
        else:
            taken = bool(
                db.session.scalar(sa.select(Decision.id).where(Decision.dedupe_key == key))
            )
        if taken:
            outcome.unchanged += 1
            continue
        if known is not None:
            earlier = known.earlier.get((case.id, draft.rule_id, draft.to_level), [])
        else:
            earlier = db.session.scalars(
                sa.select(Decision).where(
                    Decision.case_id == case.id,
                    Decision.origin == "engine",
                    Decision.period == period,
                    Decision.rule_id == draft.rule_id,
                    Decision.to_level == draft.to_level,
                )
            ).all()
        pending = next((d for d in earlier if d.status == "pending"), None)
        transition = framework.transition(draft.track, case.level, draft.to_level)
        if transition is None:
            continue  # the case moved since; the evaluation's draft no longer applies
        proposal = Decision(
            case_id=case.id,
            kind=draft.kind,
            from_level=case.level,
            to_level=draft.to_level,
            status="pending",
            signature_rule=transition.signed_by,
            reason=draft.summary,
            evidence=json.dumps(draft.evidence, sort_keys=True, default=str),
            origin="engine",
            rule_id=draft.rule_id,
            period=period,
            fingerprint=draft.fingerprint,
            dedupe_key=key,
            supersedes_id=pending.id if pending else None,
            proposed_at=now,
        )
        db.session.add(proposal)
        if known is not None:
            known.keys.add(key)
            known.earlier.setdefault((case.id, draft.rule_id, draft.to_level), []).append(proposal)
        made.append((proposal, draft, pending, list(earlier)))
    return _Drafted(unit, framework, made, fired)


def _record_proposals(
    drafted: _Drafted,
    period: date,
    outcome: ReviewOutcome,
    now: datetime,
    *,
    pending_units: set[int] | None,
) -> None:
    """The second half of :func:`store_proposals`, once the proposals have ids: what they
    supersede and flag, their audit events, and the unit's pending proposals of the month
    that no longer fire."""
    unit, framework, fired = drafted.unit, drafted.framework, drafted.fired
    for proposal, draft, pending, earlier in drafted.made:
        outcome.created.append(proposal)
        if pending is not None:
            _supersede(pending, now, f"superseded by proposal {proposal.id}: the data was revised")
            outcome.superseded.append(pending)
        for decided in earlier:
            if decided.status in ("approved", "rejected") and decided.evidence_revised_at is None:
                _flag_revised(decided, proposal, now)
                outcome.flagged.append(decided)
        record_event(
            "proposal.created",
            object_type="decision",
            object_id=proposal.id,
            summary=f"Proposed for {unit.name}: {framework.level_title(proposal.from_level)} to "
            f"{framework.level_title(draft.to_level)} ({draft.rule_id}, {period:%b %Y})",
            details={"rule": draft.rule_id, "fingerprint": draft.fingerprint},
        )
    # A pending proposal of this month whose rule no longer fires on the revised data.
    if pending_units is not None and unit.id not in pending_units:
        return  # only the proposals just made can be pending, and they all fired
    stale = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .where(
            EscalationCase.unit_id == unit.id,
            Decision.origin == "engine",
            Decision.period == period,
            Decision.status == "pending",
            Decision.kind != "earned_autonomy",  # judged by services/autonomy.py (0019)
        )
    ).all()
    for proposal in stale:
        if (proposal.case_id, proposal.rule_id, proposal.to_level) not in fired:
            _supersede(proposal, now, "no longer supported by the revised data")
            outcome.superseded.append(proposal)


def _supersede(proposal: Decision, now: datetime, why: str) -> None:
    proposal.status = "superseded"
    proposal.decided_at = now
    record_event(
        "proposal.superseded",
        object_type="decision",
        object_id=proposal.id,
        summary=f"Proposal {proposal.id} {why}",
    )


def _flag_revised(decided: Decision, newer: Decision, now: datetime) -> None:
    """Tell the people who signed a decided proposal that its evidence has changed."""
    decided.evidence_revised_at = now
    record_event(
        "decision.evidence_revised",
        object_type="decision",
        object_id=decided.id,
        summary=f"Evidence of decision {decided.id} revised after it was decided "
        f"(see proposal {newer.id})",
    )
    for signature in decided.signatures:
        queue_email(
            kind="evidence_revised",
            dedupe_key=f"evidence_revised:{decided.id}:{signature.person_id}:{newer.id}",
            recipient=signature.person,
            subject=f"Evidence revised after your decision on {decided.case.unit.name}",
            template="evidence_revised",
            link=absolute_url(f"/proposals/{newer.id}"),
            decision=decided,
            newer=newer,
        )


def run_review(
    period: date,
    *,
    actor: Person | None = None,
    now: datetime | None = None,
    units: list[Unit] | None = None,
    keep_evaluations: bool = False,
):
    """Evaluate every active unit (or just ``units``) for ``period``; store the proposals.

    Flushes only; the caller commits. The review needs only each unit's proposals, so by
    default the units are evaluated without their measure evaluations
    (``evaluate_unit(measures=False)``, decision 0041) and the outcome's ``evaluations`` are
    left empty: they are freed while the collector is paused instead of being traversed by it
    afterwards. ``keep_evaluations=True`` evaluates each unit in full and keeps the
    evaluations in the outcome (the proposals stored are the same).
    """
    now = now or utcnow()
    outcome = ReviewOutcome(period)
    if units is None:
        units = db.session.scalars(
            sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
        ).all()
    # Plans in delivery are judged against their trajectory first (failing, review period,
    # back in delivery), so the evaluation sees where each plan now stands.
    from workflow_app.services.plan_delivery import assess_plans

    outcome.plans = assess_plans(period, now=now, units=units)
    from workflow_app.services.autonomy import propose_earned_autonomy

    with _gc_paused():
        # Every unit's inputs in a few queries (after assess_plans, which can move plans).
        inputs = unit_inputs(units, period)
        pending_units = set(
            db.session.scalars(
                sa.select(EscalationCase.unit_id)
                .join(Decision, Decision.case_id == EscalationCase.id)
                .where(
                    Decision.origin == "engine",
                    Decision.period == period,
                    Decision.status == "pending",
                    Decision.kind != "earned_autonomy",
                )
                .distinct()
            )
        )
        # The evaluation is pure, so every unit is evaluated first and the proposals are
        # stored afterwards, unit by unit in the same order, with the look-ups read once.
        for unit in units:
            framework = get_framework(unit.framework)
            outcome.evaluations.append(
                evaluate_unit(inputs[unit.id], period, framework, measures=keep_evaluations)
            )
        known = _known(units, outcome.evaluations, period)
        opened: set[int] = set()
        # store_proposals unit by unit, with one flush for the month's new proposals between
        # its two halves instead of one per unit: the rows, their ids and the audit events
        # come out in the same order (a unit's events follow its proposals, unit by unit).
        drafted = [
            _add_proposals(unit, evaluation, period, outcome, now, opened=opened, known=known)
            for unit, evaluation in zip(units, outcome.evaluations, strict=True)
        ]
        db.session.flush()
        for unit_drafted in drafted:
            _record_proposals(unit_drafted, period, outcome, now, pending_units=pending_units)
            outcome.units += 1
        # Units at the lowest level that met every target: earned autonomy proposed (0019).
        token = _review_inputs.set(
            {(unit_id, period): data for unit_id, data in inputs.items() if unit_id not in opened}
        )
        try:
            propose_earned_autonomy(period, units=units, now=now)
        finally:
            _review_inputs.reset(token)
        if not keep_evaluations:
            outcome.evaluations.clear()
        del inputs
    record_event(
        "review.run",
        object_type="review",
        object_id=f"{period:%Y-%m}",
        summary=f"Escalation review for {period:%B %Y}: {outcome.units} units, "
        f"{len(outcome.created)} new proposals, {len(outcome.superseded)} superseded, "
        f"{outcome.unchanged} unchanged",
        actor=actor,
    )
    return outcome


def reviewed_periods() -> set[date]:
    """Months the review has already run for (by the schedule, or by hand)."""
    from workflow_app.models.deadlines import JobRun

    periods = set(
        db.session.scalars(
            sa.select(Decision.period)
            .where(Decision.origin == "engine", Decision.period.is_not(None))
            .distinct()
        )
    )
    periods.update(
        p
        for p in db.session.scalars(
            sa.select(JobRun.period).where(JobRun.job == "monthly_review").distinct()
        )
        if p is not None
    )
    return periods


def review_months(
    periods: list[date],
    *,
    actor: Person | None = None,
    units_for: Callable[[date], list[Unit] | None] | None = None,
) -> Iterator[ReviewOutcome]:
    """:func:`run_review` for each of ``periods`` in the order given (a backfill after loading
    history, or the re-review after a revision), with the measures' values read once for
    the whole span instead of a 24-month window per month.

    ``units_for(period)`` chooses the units of each month (``None``: every active unit).
    Yields each month's outcome once it is flushed, so the caller can commit between months;
    the outcomes keep what was stored, not the evaluations (``evaluations`` is empty), so a
    long run does not hold every month's evaluation.
    The span stays right while it is used: a review writes proposals, decisions and plan
    statuses, never actuals or trajectory values (a plan's planned values are still read
    month by month).
    """
    if not periods:
        return
    chosen = {period: units_for(period) if units_for else None for period in periods}
    if all(units is None for units in chosen.values()):
        unit_ids = list(db.session.scalars(sa.select(Unit.id).where(Unit.is_active.is_(True))))
    else:
        unit_ids = sorted({unit.id for units in chosen.values() for unit in units or ()})
    span = SeriesSpan.read(unit_ids, _months_back(min(periods), HISTORY_MONTHS - 1), max(periods))
    for period in periods:
        # Set around each month only: a ContextVar set across a yield would leak into the
        # caller's code between months.
        token = _series_span.set(span)
        try:
            outcome = run_review(period, actor=actor, units=chosen[period])
        finally:
            _series_span.reset(token)
        yield outcome


def rereview_after_revision(
    changed: set[tuple[int, date]], *, actor: Person | None = None
) -> list[ReviewOutcome]:
    """Re-run the reviews that revised data can affect (DOMAIN.md decision 10).

    A changed value for a unit in month M can change the evidence of that unit's review of
    M and of every later month already reviewed (history feeds SPC and month counts).
    """
    earliest: dict[int, date] = {}
    for unit_id, period in changed:
        earliest[unit_id] = min(period, earliest.get(unit_id, period))
    affected: dict[date, list[Unit]] = {}
    for period in sorted(reviewed_periods()):
        units = [
            db.session.get(Unit, unit_id) for unit_id, first in earliest.items() if first <= period
        ]
        if units:
            affected[period] = units
    return list(review_months(list(affected), actor=actor, units_for=affected.__getitem__))
