"""Read models: the register of escalation levels (unit x track) a person may see."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from state_machines import Framework, get_framework
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.org import Person, Unit
from workflow_app.permissions import visible_units_filter


@dataclass
class RegisterRow:
    """One unit's line in the register: its case on each track."""

    unit: Unit
    framework: Framework
    cases: dict[str, EscalationCase] = field(default_factory=dict)

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
    cases = db.session.scalars(
        sa.select(EscalationCase)
        .where(EscalationCase.unit_id.in_(rows))
        .options(so.selectinload(EscalationCase.unit))
    )
    for case in cases:
        row = rows[case.unit_id]
        if case.framework == row.framework.name:
            row.cases[case.track] = case
    return list(rows.values())


def tracks_in(rows: list[RegisterRow]) -> list[tuple[str, str]]:
    """The fixed tracks shown as register columns: (key, title), in framework order."""
    seen: dict[str, str] = {}
    for row in rows:
        for track in row.framework.tracks.values():
            if not track.per_measure:
                seen.setdefault(track.name, track.title)
    return list(seen.items())
