"""Read models: the register of escalation levels (unit x track) a person may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from state_machines import Framework, get_framework
from workflow_app.clock import LONDON, as_utc
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase, LevelChange
from workflow_app.models.org import Person, Unit
from workflow_app.models.roles import UNIT_KINDS
from workflow_app.permissions import visible_units_filter


@dataclass
class RegisterRow:
    """One unit's line in the register: its case on each track."""

    unit: Unit
    framework: Framework
    cases: dict[str, EscalationCase] = field(default_factory=dict)
    # track -> when the case reached its current level (its latest level change).
    since: dict[str, datetime] = field(default_factory=dict)

    @property
    def escalated_cases(self) -> list[EscalationCase]:
        """Cases above their track's lowest level."""
        return [
            case
            for case in self.cases.values()
            if case.level != self.framework.initial_level(case.track)
        ]

    @property
    def headline_level(self) -> EscalationCase | None:
        """The case at the highest level across the unit's tracks (DOMAIN.md decision 1)."""

        def rank(case: EscalationCase) -> int:
            return self.framework.track_for(case.track).levels.index(case.level)

        escalated = self.escalated_cases
        return max(escalated, key=rank) if escalated else None


def visible_units(person: Person, *, include_inactive: bool = False) -> list[Unit]:
    """Units ``person`` may see, ordered by code."""
    query = sa.select(Unit).where(visible_units_filter(person)).order_by(Unit.code)
    if not include_inactive:
        query = query.where(Unit.is_active.is_(True))
    return list(db.session.scalars(query))


def register_for(person: Person) -> list[RegisterRow]:
    """The register of levels for every unit ``person`` may see."""
    units = visible_units(person)
    rows = {unit.id: RegisterRow(unit, get_framework(unit.framework)) for unit in units}
    if not rows:
        return []
    # The units are already in the session, so case.unit resolves without another query.
    cases = db.session.scalars(sa.select(EscalationCase).where(EscalationCase.unit_id.in_(rows)))
    cases = [case for case in cases if case.framework == rows[case.unit_id].framework.name]
    reached = _reached_current_level([case.id for case in cases])
    for case in cases:
        row = rows[case.unit_id]
        row.cases[case.track] = case
        row.since[case.track] = reached.get(case.id) or case.level_since
    return list(rows.values())


#: Rows of the register drawn on one page (home page and Units); downloads hold every row.
REGISTER_PAGE_SIZE = 50


def _reached_current_level(case_ids: list[int]) -> dict[int, datetime]:
    """Case id -> time of its latest level change, from the level history in one query."""
    if not case_ids:
        return {}
    latest = db.session.execute(
        sa.select(LevelChange.case_id, sa.func.max(LevelChange.changed_at))
        .where(LevelChange.case_id.in_(case_ids))
        .group_by(LevelChange.case_id)
    )
    return {case_id: as_utc(changed_at) for case_id, changed_at in latest}


def time_at_level(since: datetime, now: datetime) -> str:
    """How long a case has been at its level, in words: "3 days", "5 months", "1 year 2 months"."""
    start, end = since.astimezone(LONDON).date(), now.astimezone(LONDON).date()
    months = (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day)
    if months < 1:
        days = max((end - start).days, 0)
        return "less than a day" if days == 0 else f"{days} day{'' if days == 1 else 's'}"
    years, months = divmod(months, 12)
    parts = [f"{years} year{'' if years == 1 else 's'}"] if years else []
    if months:
        parts.append(f"{months} month{'' if months == 1 else 's'}")
    return " ".join(parts)


def tracks_in(rows: list[RegisterRow]) -> list[tuple[str, str]]:
    """The fixed tracks shown as register columns: (key, title), in framework order."""
    seen: dict[str, str] = {}
    for row in rows:
        for track in row.framework.tracks.values():
            if not track.per_measure:
                seen.setdefault(track.name, track.title)
    return list(seen.items())


# --- the register as a read model (issue 9) ------------------------------------------------
# The home page and Units draw 50 rows and a few counts; building an ORM object for every
# unit and case of a 500-unit body to do so cost most of the page. These read plain tuples:
# counts from one GROUP BY, the escalated cases (a fraction of all cases) from one query,
# and the rows actually shown from one more.


@dataclass(frozen=True, slots=True)
class UnitLine:
    """The columns of a unit the register shows."""

    id: int
    code: str
    name: str
    kind: str

    @property
    def kind_title(self) -> str:
        return UNIT_KINDS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class CaseLine:
    """The columns of a case the register shows."""

    id: int
    track: str
    level: str
    level_since: datetime


@dataclass(frozen=True, slots=True)
class OpenEscalation:
    """A case above its track's lowest level, with when it reached that level."""

    unit: UnitLine
    framework: Framework
    case: CaseLine
    since: datetime

    @property
    def track_title(self) -> str:
        return self.framework.track_for(self.case.track).title


@dataclass
class RegisterSummary:
    """What the home page and Units need to know about every visible unit, without loading
    every unit: how many there are (by framework) and every escalated case."""

    # framework name -> active visible units on it, in the order the frameworks sort.
    units_by_framework: dict[str, int]
    # (unit, framework, case) of each escalated case, by unit code then case id.
    escalated: list[tuple[UnitLine, Framework, CaseLine]]

    @property
    def total(self) -> int:
        return sum(self.units_by_framework.values())

    @property
    def frameworks(self) -> list[Framework]:
        return [get_framework(name) for name in self.units_by_framework]

    def tracks(self) -> list[tuple[str, str]]:
        """The fixed tracks shown as register columns: (key, title), in framework order."""
        seen: dict[str, str] = {}
        for framework in self.frameworks:
            for track in framework.tracks.values():
                if not track.per_measure:
                    seen.setdefault(track.name, track.title)
        return list(seen.items())


#: Open escalations drawn on one page (home page and Units > Open escalations).
ESCALATIONS_PAGE_SIZE = 50


def _visible_active_units(person: Person) -> sa.ColumnElement[bool]:
    return sa.and_(visible_units_filter(person), Unit.is_active.is_(True))


def register_summary(person: Person) -> RegisterSummary:
    """Counts and escalated cases of the units ``person`` may see, in two queries."""
    counts = db.session.execute(
        sa.select(Unit.framework, sa.func.count())
        .where(_visible_active_units(person))
        .group_by(Unit.framework)
        .order_by(Unit.framework)
    ).all()
    by_framework = {name: number for name, number in counts}
    escalated_where = _escalated_condition(list(by_framework))
    escalated: list[tuple[UnitLine, Framework, CaseLine]] = []
    if escalated_where is not None:
        query = (
            sa.select(
                Unit.id,
                Unit.code,
                Unit.name,
                Unit.kind,
                Unit.framework,
                EscalationCase.id,
                EscalationCase.track,
                EscalationCase.level,
                EscalationCase.level_since,
            )
            .join(Unit, Unit.id == EscalationCase.unit_id)
            # A unit moved to another framework keeps its old cases; only the current count.
            .where(_visible_active_units(person), EscalationCase.framework == Unit.framework)
            .where(escalated_where)
            .order_by(Unit.code, EscalationCase.id)
        )
        units: dict[int, UnitLine] = {}
        for uid, code, name, kind, fw, cid, track, level, since in db.session.execute(query):
            unit = units.get(uid) or units.setdefault(uid, UnitLine(uid, code, name, kind))
            case = CaseLine(cid, track, level, as_utc(since))
            escalated.append((unit, get_framework(fw), case))
    return RegisterSummary(by_framework, escalated)


def _escalated_condition(framework_names: list[str]) -> sa.ColumnElement[bool] | None:
    """WHERE a case stands above its track's lowest level, for the frameworks named."""
    terms = []
    for name in framework_names:
        framework = get_framework(name)
        for track in framework.tracks.values():
            on_track = (
                EscalationCase.track.like(f"{track.name}:%")
                if track.per_measure
                else EscalationCase.track == track.name
            )
            terms.append(
                sa.and_(
                    EscalationCase.framework == name,
                    on_track,
                    EscalationCase.level != track.levels[0],
                )
            )
    return sa.or_(*terms) if terms else None


def level_counts(summary: RegisterSummary) -> list[tuple[int, str, str, int]]:
    """(rank, level, title, units) at each headline level, highest first (a unit's headline
    is its highest case; a unit with no escalated case counts at its normal level)."""
    counts: dict[tuple[int, str, str], int] = {}
    headline: dict[int, tuple[int, str, Framework]] = {}
    for unit, framework, case in summary.escalated:
        rank = framework.track_for(case.track).levels.index(case.level)
        if unit.id not in headline or rank > headline[unit.id][0]:
            headline[unit.id] = (rank, case.level, framework)
    escalated_units: dict[str, int] = {}
    for rank, level, framework in headline.values():
        key = (rank, level, framework.level_title(level))
        counts[key] = counts.get(key, 0) + 1
        escalated_units[framework.name] = escalated_units.get(framework.name, 0) + 1
    for framework in summary.frameworks:
        fixed = [t for t in framework.tracks.values() if not t.per_measure]
        normal = summary.units_by_framework[framework.name] - escalated_units.get(framework.name, 0)
        if not fixed or normal <= 0:
            continue
        level = fixed[0].levels[0]
        key = (0, level, framework.level_title(level))
        counts[key] = counts.get(key, 0) + normal
    ordered = sorted(counts.items(), key=lambda item: (-item[0][0], item[0][1]))
    return [(rank, level, title, units) for (rank, level, title), units in ordered]


def open_escalations_page(summary: RegisterSummary, number: int = 1) -> Page:
    """Page ``number`` of the open escalations (50 a page), with when each case reached its
    level (its latest level change) for the rows shown only."""
    page = Page.of(summary.escalated, number, ESCALATIONS_PAGE_SIZE)
    reached = _reached_current_level([case.id for _unit, _fw, case in page.items])
    page.items = [
        OpenEscalation(unit, framework, case, reached.get(case.id) or case.level_since)
        for unit, framework, case in page.items
    ]
    return page


def register_rows_page(person: Person, summary: RegisterSummary, number: int = 1) -> Page:
    """Page ``number`` of the register (50 units a page, by code) as RegisterRows of plain
    tuples, loading only the units and cases shown."""
    page = Page.of(range(summary.total), number, REGISTER_PAGE_SIZE)
    units = db.session.execute(
        sa.select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.framework)
        .where(_visible_active_units(person))
        .order_by(Unit.code)
        .offset((page.number - 1) * REGISTER_PAGE_SIZE)
        .limit(REGISTER_PAGE_SIZE)
    ).all()
    rows = {
        uid: RegisterRow(UnitLine(uid, code, name, kind), get_framework(fw))
        for uid, code, name, kind, fw in units
    }
    if rows:
        # When each case reached its level: its latest level change (index on case_id).
        reached = (
            sa.select(sa.func.max(LevelChange.changed_at))
            .where(LevelChange.case_id == EscalationCase.id)
            .scalar_subquery()
        )
        cases = db.session.execute(
            sa.select(
                EscalationCase.id,
                EscalationCase.unit_id,
                EscalationCase.framework,
                EscalationCase.track,
                EscalationCase.level,
                EscalationCase.level_since,
                reached,
            )
            .where(EscalationCase.unit_id.in_(rows))
            .order_by(EscalationCase.id)
        )
        for cid, uid, fw, track, level, level_since, at in cases:
            row = rows[uid]
            if fw != row.framework.name:
                continue
            row.cases[track] = CaseLine(cid, track, level, as_utc(level_since))
            row.since[track] = as_utc(at) if at is not None else as_utc(level_since)
    page.items = list(rows.values())
    return page


@dataclass
class Page:
    """One page of a list: its items and where the neighbouring pages are."""

    items: list
    number: int
    pages: int
    total: int

    @classmethod
    def of(cls, items, number: int, size: int) -> Page:
        """Page ``number`` (from 1; out-of-range numbers give the nearest page) of ``items``."""
        total = len(items)
        pages = max(1, -(-total // size))
        number = min(max(number, 1), pages)
        start = (number - 1) * size
        return cls(list(items[start : start + size]), number, pages, total)

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None
