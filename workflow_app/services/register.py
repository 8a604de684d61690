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


@dataclass
class RegisterPage:
    """One page of the register: its rows and where the neighbouring pages are."""

    rows: list[RegisterRow]
    number: int
    pages: int
    total: int

    @property
    def previous(self) -> int | None:
        """The previous page's number, if any."""
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        """The next page's number, if any."""
        return self.number + 1 if self.number < self.pages else None


def register_page(rows: list[RegisterRow], number: int = 1) -> RegisterPage:
    """Page ``number`` (from 1; out-of-range numbers give the nearest page) of ``rows``.

    Drawing every row of a large body's register costs more than the rest of the page
    together (bench/bench_pages.py), and nobody reads 500 rows on one screen.
    """
    pages = max(1, -(-len(rows) // REGISTER_PAGE_SIZE))
    number = min(max(number, 1), pages)
    start = (number - 1) * REGISTER_PAGE_SIZE
    return RegisterPage(rows[start : start + REGISTER_PAGE_SIZE], number, pages, len(rows))


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
