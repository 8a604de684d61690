"""One search across units, cases, measures and plans, limited to what a person may see.

Free text matches every word (in any order) against each kind's text columns, ignoring
case the same way on SQLite and PostgreSQL (Python's ``str.lower`` on both: PostgreSQL's
``lower()`` and a ``escalate_lower`` function registered on SQLite connections, whose own
``lower()`` folds ASCII only). LIKE wildcards typed by a person (``%``, ``_``, ``\\``) are
matched literally. Filters that do not apply to a kind are ignored; a lead sees only the
rows of their own units (:func:`workflow_app.permissions.visible_units_filter`).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.engine import Engine

from state_machines import available_frameworks, get_framework
from state_machines.plan_review import STATUS_TITLES
from workflow_app.clock import LONDON, as_utc
from workflow_app.evaluation.model import MeasureInput, MonthPoint
from workflow_app.evaluation.rules import rag as rag_of
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.measures import DIRECTIONS, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.plans import PLAN_KINDS, RecoveryPlan
from workflow_app.models.roles import UNIT_KINDS
from workflow_app.permissions import visible_units_filter
from workflow_app.services.list_export import Column

KINDS = {"units": "Units", "cases": "Cases", "measures": "Measures", "plans": "Plans"}
PAGE_SIZE = 25
MAX_WORDS = 8
RAG_CHOICES = {
    "exception": "In exception (red or amber)",
    "red": "Red",
    "amber": "Amber",
    "green": "Green",
    "no_data": "No data",
}
RAG_TITLES = {"red": "Red", "amber": "Amber", "green": "Green", None: "No data"}

#: Which filters each kind of result understands; the page shows only these.
FILTERS = {
    "units": ("unit_kind", "framework", "level", "domain", "inactive"),
    "cases": ("unit_kind", "framework", "track", "level", "date_from", "date_to", "inactive"),
    "measures": ("unit_kind", "framework", "domain", "rag", "inactive"),
    "plans": ("unit_kind", "framework", "track", "plan_status", "date_from", "date_to", "inactive"),
}
#: What the date range means for each kind that has one.
DATE_MEANING = {"cases": "Reached its level", "plans": "Last changed"}

#: Sort options per kind: key -> (label, ORDER BY columns). The first is the default.
SORTS: dict[str, dict[str, tuple[str, tuple[Any, ...]]]] = {
    "units": {
        "code": ("Code", (Unit.code,)),
        "name": ("Name (A to Z)", (Unit.name, Unit.code)),
        "-name": ("Name (Z to A)", (Unit.name.desc(), Unit.code)),
        "kind": ("Kind of unit", (Unit.kind, Unit.code)),
    },
    "cases": {
        "unit": ("Unit", (Unit.code, EscalationCase.track)),
        "-level": ("Highest level first", (sa.desc("level_rank"), Unit.code)),
        "since": ("Longest at its level first", (EscalationCase.level_since, Unit.code)),
        "-since": ("Most recent change first", (EscalationCase.level_since.desc(), Unit.code)),
    },
    "measures": {
        "unit": ("Unit, then measure code", (Unit.code, Measure.code)),
        "code": ("Measure code", (Measure.code, Unit.code)),
        "name": ("Measure name", (Measure.name, Unit.code)),
        "domain": ("Domain", (Domain.name, Unit.code, Measure.code)),
    },
    "plans": {
        "-updated": ("Most recently changed first", (RecoveryPlan.updated_at.desc(),)),
        "updated": ("Least recently changed first", (RecoveryPlan.updated_at,)),
        "unit": ("Unit", (Unit.code, RecoveryPlan.id)),
        "status": ("Status", (RecoveryPlan.status, Unit.code)),
    },
}


# --- case-insensitive matching, the same on SQLite and PostgreSQL --------------------------

SQLITE_LOWER = "escalate_lower"


@sa.event.listens_for(Engine, "connect")
def _register_sqlite_lower(dbapi_connection, _record) -> None:
    # SQLite's lower() folds ASCII only; give it Python's, which matches PostgreSQL's.
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(
            SQLITE_LOWER,
            1,
            lambda text: text.lower() if isinstance(text, str) else text,
            deterministic=True,
        )


def like_pattern(word: str) -> str:
    """``%word%`` with the LIKE wildcards and the escape character taken literally."""
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _lower(column: Any) -> Any:
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.func.escalate_lower(column)
    return sa.func.lower(column)


def text_filter(q: str, columns: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Every word of ``q`` appears (ignoring case) in at least one of ``columns``."""
    words = q.split()[:MAX_WORDS]
    return sa.and_(
        *[
            sa.or_(*[_lower(column).like(like_pattern(word), escape="\\") for column in columns])
            for word in words
        ]
    )


# --- criteria and results -------------------------------------------------------------------


@dataclass(frozen=True)
class Criteria:
    """What to search for. Empty values mean "any"."""

    kind: str = "units"
    q: str = ""
    unit_kind: str = ""
    framework: str = ""
    track: str = ""
    level: str = ""
    domain: str = ""
    rag: str = ""
    plan_status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    inactive: bool = False
    sort: str = ""


@dataclass(frozen=True)
class Hit:
    """One result: the object, the page that shows it, and values for the columns."""

    obj: Any
    endpoint: str
    params: dict[str, Any]
    label: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Results:
    """One page of hits (or all of them, for a download) and the count of every match."""

    kind: str
    hits: list[Hit]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page)) if self.per_page else 1

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page) if self.per_page else self.total


def level_choices() -> list[tuple[str, str]]:
    """Every level of the bundled frameworks, once: (id, title)."""
    seen: dict[str, str] = {}
    for name in available_frameworks():
        for level in get_framework(name).levels.values():
            seen.setdefault(level.id, level.title)
    return list(seen.items())


def track_choices() -> list[tuple[str, str]]:
    """Every track of the bundled frameworks, once: (key, title)."""
    seen: dict[str, str] = {}
    for name in available_frameworks():
        for track in get_framework(name).tracks.values():
            seen.setdefault(track.name, track.title)
    return list(seen.items())


def framework_choices() -> list[tuple[str, str]]:
    return [(name, get_framework(name).title) for name in available_frameworks()]


def domain_choices() -> list[tuple[str, str]]:
    return [(d.code, d.name) for d in db.session.scalars(sa.select(Domain).order_by(Domain.name))]


def plan_status_choices() -> list[tuple[str, str]]:
    return list(STATUS_TITLES.items())


def unit_kind_choices() -> list[tuple[str, str]]:
    return list(UNIT_KINDS.items())


def sort_choices(kind: str) -> list[tuple[str, str]]:
    return [(key, label) for key, (label, _) in SORTS[kind].items()]


# --- the search -----------------------------------------------------------------------------


def _london_day_start(day: date) -> datetime:
    return as_utc(datetime.combine(day, time.min, tzinfo=LONDON))


def _date_range(column: Any, criteria: Criteria) -> list[sa.ColumnElement[bool]]:
    where = []
    if criteria.date_from:
        where.append(column >= _london_day_start(criteria.date_from))
    if criteria.date_to:
        where.append(column < _london_day_start(criteria.date_to + timedelta(days=1)))
    return where


def _unit_filters(person: Person, criteria: Criteria) -> list[sa.ColumnElement[bool]]:
    where = [visible_units_filter(person)]
    if not criteria.inactive:
        where.append(Unit.is_active.is_(True))
    if criteria.unit_kind:
        where.append(Unit.kind == criteria.unit_kind)
    if criteria.framework:
        where.append(Unit.framework == criteria.framework)
    return where


def _track_filter(column: Any, track: str) -> sa.ColumnElement[bool]:
    # A per-measure track (framework C) is stored as "measure:<code>".
    return sa.or_(column == track, column.like(like_pattern(track)[1:-1] + ":%", escape="\\"))


def _units_query(person: Person, c: Criteria) -> sa.Select:
    query = sa.select(Unit).where(*_unit_filters(person, c))
    if c.q:
        query = query.where(text_filter(c.q, (Unit.code, Unit.name)))
    if c.level:
        query = query.where(
            sa.exists().where(
                EscalationCase.unit_id == Unit.id,
                EscalationCase.framework == Unit.framework,
                EscalationCase.level == c.level,
            )
        )
    if c.domain:
        in_domain = sa.select(Domain.id).where(Domain.code == c.domain).scalar_subquery()
        query = query.where(
            sa.exists().where(
                Measure.unit_id == Unit.id,
                Measure.is_active.is_(True),
                Measure.domain_id == in_domain,
            )
        )
    return query.options(so.selectinload(Unit.lead))


def level_rank() -> sa.ColumnElement[int]:
    """A case's level as its step up its track (0 = lowest), for "highest level first":
    level ids do not sort by themselves (system tiers: "performing" ... "icb")."""
    ranks: dict[tuple[str, str], int] = {}
    for name in available_frameworks():
        for track in get_framework(name).tracks.values():
            for step, level in enumerate(track.levels):
                ranks[(name, level)] = max(step, ranks.get((name, level), 0))
    return sa.case(
        *[
            (sa.and_(EscalationCase.framework == name, EscalationCase.level == level), step)
            for (name, level), step in ranks.items()
        ],
        else_=0,
    ).label("level_rank")


def _cases_query(person: Person, c: Criteria) -> sa.Select:
    query = (
        sa.select(EscalationCase, level_rank())
        .join(Unit, Unit.id == EscalationCase.unit_id)
        .where(*_unit_filters(person, c), EscalationCase.framework == Unit.framework)
        .options(so.contains_eager(EscalationCase.unit))
    )
    if c.q:
        query = query.where(text_filter(c.q, (Unit.code, Unit.name, EscalationCase.track)))
    if c.track:
        query = query.where(_track_filter(EscalationCase.track, c.track))
    if c.level:
        query = query.where(EscalationCase.level == c.level)
    return query.where(*_date_range(EscalationCase.level_since, c))


def _measures_query(person: Person, c: Criteria) -> sa.Select:
    query = (
        sa.select(Measure)
        .join(Unit, Unit.id == Measure.unit_id)
        .join(Domain, Domain.id == Measure.domain_id)
        .where(*_unit_filters(person, c), Measure.is_active.is_(True))
        .options(so.contains_eager(Measure.unit), so.contains_eager(Measure.domain))
    )
    if c.q:
        query = query.where(text_filter(c.q, (Measure.code, Measure.name, Unit.code, Unit.name)))
    if c.domain:
        query = query.where(Domain.code == c.domain)
    return query


def _plans_query(person: Person, c: Criteria) -> sa.Select:
    query = (
        sa.select(RecoveryPlan)
        .join(Unit, Unit.id == RecoveryPlan.unit_id)
        .join(EscalationCase, EscalationCase.id == RecoveryPlan.case_id)
        .where(*_unit_filters(person, c))
        .options(so.contains_eager(RecoveryPlan.unit), so.contains_eager(RecoveryPlan.case))
    )
    if c.q:
        query = query.where(text_filter(c.q, (RecoveryPlan.title, Unit.code, Unit.name)))
    if c.track:
        query = query.where(_track_filter(EscalationCase.track, c.track))
    if c.plan_status:
        query = query.where(RecoveryPlan.status == c.plan_status)
    return query.where(*_date_range(RecoveryPlan.updated_at, c))


QUERIES = {
    "units": _units_query,
    "cases": _cases_query,
    "measures": _measures_query,
    "plans": _plans_query,
}


def count(person: Person, criteria: Criteria) -> int:
    """How many rows of ``criteria.kind`` match (RAG filters included)."""
    if criteria.kind == "measures" and criteria.rag:
        return len(_measure_hits(person, criteria, None, None)[0])
    query = QUERIES[criteria.kind](person, criteria)
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def search(person: Person, criteria: Criteria, page: int | None = 1) -> Results:
    """The matching rows the person may see: one page, or every row when ``page`` is None."""
    kind = criteria.kind
    if kind == "measures":
        hits, total = _measure_hits(person, criteria, page, PAGE_SIZE)
    else:
        query = QUERIES[kind](person, criteria).order_by(*_order(kind, criteria.sort))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        if page is not None:
            page = min(max(page, 1), max(1, math.ceil(total / PAGE_SIZE)))
            query = query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        rows = list(db.session.scalars(query).unique())
        hits = HIT_BUILDERS[kind](rows)
    if page is None:
        return Results(kind, hits, total, 1, 0)
    page = min(max(page, 1), max(1, math.ceil(total / PAGE_SIZE)))
    return Results(kind, hits, total, page, PAGE_SIZE)


def _order(kind: str, sort: str) -> tuple[Any, ...]:
    options = SORTS[kind]
    _, columns = options.get(sort) or next(iter(options.values()))
    # The id last, so equal keys page in a stable order.
    model = {"units": Unit, "cases": EscalationCase, "measures": Measure, "plans": RecoveryPlan}
    return (*columns, model[kind].id)


# --- hits -----------------------------------------------------------------------------------


def _level_title(framework_name: str, level: str) -> str:
    try:
        return get_framework(framework_name).level_title(level)
    except KeyError:
        return level


def track_title(framework_name: str, track: str) -> str:
    """A track's title, with the measure code for a per-measure track."""
    try:
        title = get_framework(framework_name).track_for(track).title
    except KeyError:
        return track
    _, sep, code = track.partition(":")
    return f"{title} ({code})" if sep else title


def _unit_hits(units: list[Unit]) -> list[Hit]:
    cases: dict[int, list[EscalationCase]] = {unit.id: [] for unit in units}
    if units:
        for case in db.session.scalars(
            sa.select(EscalationCase)
            .where(EscalationCase.unit_id.in_(cases))
            .order_by(EscalationCase.track)
        ):
            cases[case.unit_id].append(case)
    hits = []
    for unit in units:
        own = [case for case in cases[unit.id] if case.framework == unit.framework]
        levels = "; ".join(
            f"{track_title(unit.framework, case.track)}: {_level_title(unit.framework, case.level)}"
            for case in own
        )
        hits.append(
            Hit(
                unit,
                "units.show",
                {"unit_id": unit.id},
                unit.name,
                {"levels": levels, "framework": get_framework(unit.framework).title},
            )
        )
    return hits


def _case_hits(cases: list[EscalationCase]) -> list[Hit]:
    return [
        Hit(
            case,
            "cases.show",
            {"case_id": case.id},
            f"{case.unit.name}: {track_title(case.framework, case.track)}",
            {
                "track": track_title(case.framework, case.track),
                "level": _level_title(case.framework, case.level),
                "framework": get_framework(case.framework).title,
            },
        )
        for case in cases
    ]


def _plan_hits(plans: list[RecoveryPlan]) -> list[Hit]:
    return [
        Hit(
            plan,
            "plans.show",
            {"plan_id": plan.id},
            plan.title,
            {
                "kind": PLAN_KINDS.get(plan.kind, plan.kind),
                "status": STATUS_TITLES.get(plan.status, plan.status),
                "track": track_title(plan.case.framework, plan.case.track),
            },
        )
        for plan in plans
    ]


HIT_BUILDERS = {"units": _unit_hits, "cases": _case_hits, "plans": _plan_hits}


def latest_rags(measures: list[Measure]) -> dict[int, tuple[date | None, Any, str | None]]:
    """Each measure's latest month with an actual: (month, value, RAG); RAG as the
    evaluation computes it (latest revision, that month's trajectory, the tolerance)."""
    result: dict[int, tuple[date | None, Any, str | None]] = {
        m.id: (None, None, None) for m in measures
    }
    if not measures:
        return result
    ids = list(result)
    latest = (
        sa.select(MonthlyActual.measure_id, sa.func.max(MonthlyActual.period).label("period"))
        .where(MonthlyActual.measure_id.in_(ids))
        .group_by(MonthlyActual.measure_id)
        .subquery()
    )
    actuals: dict[int, MonthlyActual] = {}
    for actual in db.session.scalars(
        sa.select(MonthlyActual)
        .join(
            latest,
            sa.and_(
                latest.c.measure_id == MonthlyActual.measure_id,
                latest.c.period == MonthlyActual.period,
            ),
        )
        .order_by(MonthlyActual.revision)
    ):
        actuals[actual.measure_id] = actual  # the highest revision wins
    trajectories = {
        (t.measure_id, t.period): t.value
        for t in db.session.scalars(
            sa.select(TrajectoryValue).join(
                latest,
                sa.and_(
                    latest.c.measure_id == TrajectoryValue.measure_id,
                    latest.c.period == TrajectoryValue.period,
                ),
            )
        )
    }
    for measure in measures:
        actual = actuals.get(measure.id)
        if actual is None:
            continue
        trajectory = trajectories.get((measure.id, actual.period))
        measure_input = MeasureInput(
            code=measure.code,
            name=measure.name,
            domain="",
            kind=measure.kind,
            target=float(measure.target),
            direction=measure.direction,
            tolerance=float(measure.tolerance) if measure.tolerance is not None else None,
            unit_of_measure=measure.unit_of_measure,
        )
        point = MonthPoint(
            actual.period,
            float(actual.value),
            float(trajectory) if trajectory is not None else None,
        )
        result[measure.id] = (actual.period, actual.value, rag_of(measure_input, point))
    return result


def _rag_matches(wanted: str, rag: str | None) -> bool:
    if wanted == "exception":
        return rag in ("red", "amber")
    if wanted == "no_data":
        return rag is None
    return rag == wanted


def _measure_hits(
    person: Person, c: Criteria, page: int | None, per_page: int | None
) -> tuple[list[Hit], int]:
    query = _measures_query(person, c).order_by(*_order("measures", c.sort))
    if c.rag:
        # RAG is computed from the data, not stored: filter after evaluating every match.
        measures = list(db.session.scalars(query).unique())
        rags = latest_rags(measures)
        measures = [m for m in measures if _rag_matches(c.rag, rags[m.id][2])]
        total = len(measures)
        if page is not None and per_page:
            page = min(max(page, 1), max(1, math.ceil(total / per_page)))
            measures = measures[(page - 1) * per_page : page * per_page]
    else:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        if page is not None and per_page:
            page = min(max(page, 1), max(1, math.ceil(total / per_page)))
            query = query.limit(per_page).offset((page - 1) * per_page)
        measures = list(db.session.scalars(query).unique())
        rags = latest_rags(measures)
    hits = [
        Hit(
            measure,
            "units.measures",
            {"unit_id": measure.unit_id},
            f"{measure.code} {measure.name}",
            {
                "month": rags[measure.id][0],
                "actual": rags[measure.id][1],
                "rag": RAG_TITLES[rags[measure.id][2]],
                "direction": DIRECTIONS.get(measure.direction, measure.direction),
            },
        )
        for measure in measures
    ]
    return hits, total


# --- columns, for the page and the downloads -------------------------------------------------

#: The column whose cell links to the row's own page.
LINK_COLUMN = {"units": "Name", "cases": "Track", "measures": "Measure", "plans": "Plan"}


def _unit_of(hit: Hit) -> Unit:
    return hit.obj if isinstance(hit.obj, Unit) else hit.obj.unit


COLUMNS: dict[str, list[Column]] = {
    "units": [
        Column("Code", lambda h: h.obj.code),
        Column("Name", lambda h: h.obj.name),
        Column("Kind", lambda h: h.obj.kind_title),
        Column("Framework", lambda h: h.extra["framework"]),
        Column("Levels", lambda h: h.extra["levels"]),
        Column("Lead", lambda h: h.obj.lead.name if h.obj.lead else ""),
        Column("Active", lambda h: h.obj.is_active),
    ],
    "cases": [
        Column("Unit code", lambda h: h.obj.unit.code),
        Column("Unit", lambda h: h.obj.unit.name),
        Column("Framework", lambda h: h.extra["framework"]),
        Column("Track", lambda h: h.extra["track"]),
        Column("Level", lambda h: h.extra["level"]),
        Column("At this level since", lambda h: h.obj.level_since),
    ],
    "measures": [
        Column("Unit code", lambda h: h.obj.unit.code),
        Column("Unit", lambda h: h.obj.unit.name),
        Column("Measure code", lambda h: h.obj.code),
        Column("Measure", lambda h: h.obj.name),
        Column("Domain", lambda h: h.obj.domain.name),
        Column("Target", lambda h: h.obj.target),
        Column("Direction", lambda h: h.extra["direction"]),
        Column("Latest month", lambda h: h.extra["month"], lambda month: f"{month:%b %Y}"),
        Column("Latest actual", lambda h: h.extra["actual"]),
        Column("RAG", lambda h: h.extra["rag"]),
    ],
    "plans": [
        Column("Unit code", lambda h: h.obj.unit.code),
        Column("Unit", lambda h: h.obj.unit.name),
        Column("Plan", lambda h: h.obj.title),
        Column("Kind", lambda h: h.extra["kind"]),
        Column("Track", lambda h: h.extra["track"]),
        Column("Status", lambda h: h.extra["status"]),
        Column("Version", lambda h: h.obj.current_version or None),
        Column("Last changed", lambda h: h.obj.updated_at),
    ],
}
