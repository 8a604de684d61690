"""Read models for the home pages: what awaits a person, what is overdue, what comes next.

Each function is one or two SQL statements over the units ``person`` may see (eager loads
instead of lazy ones, so a page with hundreds of rows stays a handful of queries).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
import sqlalchemy.orm as so

from state_machines import Framework, get_framework
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Person, Unit
from workflow_app.permissions import visible_units_filter
from workflow_app.services.decisions import (
    SigningCapacity,
    active_delegations,
    signing_capacity,
)
from workflow_app.services.register import RegisterRow, RegisterSummary, level_counts

#: How far ahead the home page looks for meetings.
MEETINGS_AHEAD = timedelta(days=42)
#: The most recent letters a lead's home page lists.
RECENT_LETTERS = 10


@dataclass(frozen=True)
class AwaitingDecision:
    """A pending decision the person may sign next, and in which capacity."""

    decision: Decision
    framework: Framework
    capacity: SigningCapacity

    @property
    def track_title(self) -> str:
        """The track's title (per-measure tracks name their measure)."""
        case = self.decision.case
        title = self.framework.track_for(case.track).title
        return f"{title}: {case.track[8:]}" if case.track.startswith("measure:") else title


@dataclass(frozen=True)
class LevelCount:
    """How many units stand at one headline level (levels of different frameworks apart)."""

    level: str
    title: str
    units: int


def decisions_awaiting(person: Person, now: datetime) -> list[AwaitingDecision]:
    """Pending decisions on visible units that ``person`` may sign next, oldest first."""
    # Only someone who holds a signing role, or covers for someone who does, can sign: the
    # others (leads, committee members) are answered without touching the decisions.
    signing_roles = {
        role
        for unit_framework in _frameworks_in_use()
        for rule in unit_framework.signatures.values()
        for role in (*rule.sequence, *rule.any_of)
    }
    if not (person.roles & signing_roles) and not active_delegations(person, now):
        return []
    pending = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .join(Unit, Unit.id == EscalationCase.unit_id)
        .where(Decision.status == "pending", visible_units_filter(person))
        .order_by(Decision.proposed_at, Decision.id)
        .options(
            so.contains_eager(Decision.case).contains_eager(EscalationCase.unit),
            so.selectinload(Decision.signatures),
        )
    ).all()
    awaiting = []
    for decision in pending:
        capacity = signing_capacity(person, decision, now)
        if capacity is not None:
            framework = get_framework(decision.case.framework)
            awaiting.append(AwaitingDecision(decision, framework, capacity))
    return awaiting


def _frameworks_in_use() -> list[Framework]:
    names = db.session.scalars(sa.select(Unit.framework).distinct())
    return [get_framework(name) for name in names]


# The statements below are built once per kind of viewer and reused: building a select
# with its eager loads (and its cache key) every request cost about as much as running it
# (bench/bench_pages.py). The person and the time are bound parameters.
_PERSON = sa.bindparam("scope_person_id")
_NOW = sa.bindparam("now", type_=Deadline.due_at.type)
_MEETINGS_FROM = sa.bindparam("meetings_from", type_=Meeting.starts_at.type)
_MEETINGS_TO = sa.bindparam("meetings_to", type_=Meeting.starts_at.type)


def _scope(whole_organisation: bool) -> sa.ColumnElement[bool]:
    """:func:`visible_units_filter` with the person as a bound parameter."""
    if whole_organisation:
        return sa.true()
    return sa.or_(Unit.lead_id == _PERSON, Unit.budget_holder_id == _PERSON)


@cache
def _obligations_statement(whole_organisation: bool, overdue: bool) -> sa.Select:
    query = (
        sa.select(Deadline)
        .join(Unit, Unit.id == Deadline.unit_id)
        .where(_scope(whole_organisation), Unit.is_active.is_(True))
        .order_by(Deadline.due_at, Deadline.id)
        .options(
            so.contains_eager(Deadline.unit),
            so.joinedload(Deadline.case),
            so.joinedload(Deadline.owner),
        )
    )
    if overdue:
        return query.where(Deadline.status == "open", Deadline.due_at < _NOW)
    return query.where(Deadline.status.in_(("open", "paused")))


def open_obligations(person: Person, *, overdue_at: datetime | None = None) -> list[Deadline]:
    """Open or paused obligations of visible units, soonest first; with ``overdue_at``, only
    the open ones already past due at that time."""
    statement = _obligations_statement(person.sees_whole_organisation, overdue_at is not None)
    params = {"scope_person_id": person.id, "now": overdue_at}
    return list(db.session.scalars(statement, params))


@cache
def _upcoming_statement(whole_organisation: bool) -> sa.Select:
    return (
        sa.select(Meeting)
        .join(Unit, Unit.id == Meeting.unit_id)
        .where(
            _scope(whole_organisation),
            Meeting.status == "scheduled",
            Meeting.starts_at >= _MEETINGS_FROM,
            Meeting.starts_at < _MEETINGS_TO,
        )
        .order_by(Meeting.starts_at, Meeting.id)
        .options(so.contains_eager(Meeting.unit), so.joinedload(Meeting.chair))
    )


def upcoming_meetings(person: Person, now: datetime) -> list[Meeting]:
    """Scheduled meetings about visible units in the next six weeks, soonest first."""
    params = {
        "scope_person_id": person.id,
        "meetings_from": now,
        "meetings_to": now + MEETINGS_AHEAD,
    }
    return list(db.session.scalars(_upcoming_statement(person.sees_whole_organisation), params))


@cache
def _to_schedule_statement(whole_organisation: bool) -> sa.Select:
    return (
        sa.select(Meeting)
        .join(Unit, Unit.id == Meeting.unit_id)
        .where(_scope(whole_organisation), Meeting.status == "requested")
        .order_by(Meeting.hold_by.nulls_last(), Meeting.id)
        .options(so.contains_eager(Meeting.unit))
    )


def meetings_to_schedule(person: Person) -> list[Meeting]:
    """Requested meetings about visible units that nobody has put in the diary yet."""
    statement = _to_schedule_statement(person.sees_whole_organisation)
    return list(db.session.scalars(statement, {"scope_person_id": person.id}))


def recent_letters(person: Person, limit: int = RECENT_LETTERS) -> list[Letter]:
    """The latest current letters (not replaced by a reissue) about visible units."""
    return list(
        db.session.scalars(
            sa.select(Letter)
            .join(EscalationCase, EscalationCase.id == Letter.case_id)
            .join(Unit, Unit.id == EscalationCase.unit_id)
            .where(visible_units_filter(person), Letter.superseded_by_id.is_(None))
            .order_by(Letter.issued_at.desc(), Letter.id.desc())
            .limit(limit)
            .options(so.contains_eager(Letter.case).contains_eager(EscalationCase.unit))
        )
    )


def units_by_level(rows: list[RegisterRow]) -> list[LevelCount]:
    """How many units stand at each headline level, highest first; from the register rows
    already loaded (no query). A unit with no escalated case counts at its normal level."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for row in rows:
        case = row.headline_level
        if case is None:
            tracks = [t for t in row.framework.tracks.values() if not t.per_measure]
            if not tracks:
                continue
            level = row.framework.initial_level(tracks[0].name)
            rank = 0
        else:
            level = case.level
            rank = row.framework.track_for(case.track).levels.index(level)
        counts[(rank, level, row.framework.level_title(level))] += 1
    return [
        LevelCount(level, title, units)
        for (rank, level, title), units in sorted(
            counts.items(), key=lambda item: (-item[0][0], item[0][1])
        )
    ]


def level_counts_of(summary: RegisterSummary) -> list[LevelCount]:
    """:func:`units_by_level` from the register's read model: only the escalated cases are
    loaded, every other unit counts at its framework's normal level."""
    return [LevelCount(level, title, units) for _rank, level, title, units in level_counts(summary)]
