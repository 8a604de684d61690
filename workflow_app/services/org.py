"""Maintaining units and measures (the performance team's administration)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from state_machines import get_framework
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase, LevelChange
from workflow_app.models.measures import Measure
from workflow_app.models.org import Person, RoleGrant, Unit
from workflow_app.permissions import can_manage_units
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError, require

UNIT_FIELDS = (
    "code",
    "name",
    "kind",
    "parent_id",
    "accountable_executive_id",
    "lead_id",
    "budget_holder_id",
    "framework",
    "is_active",
)
MEASURE_FIELDS = (
    "code",
    "name",
    "domain_id",
    "kind",
    "target",
    "direction",
    "tolerance",
    "unit_of_measure",
    "owner_id",
    "is_active",
)


def _snapshot(obj: object, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before[k], after[k]] for k in before if before[k] != after[k]}


def people_with_role(*roles: str) -> list[Person]:
    """Enabled people holding any of ``roles``, by name."""
    return list(
        db.session.scalars(
            sa.select(Person)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role.in_(roles), Person.is_enabled.is_(True))
            .order_by(Person.name, Person.id)
            .distinct()
        )
    )


def unit_contacts(unit: Unit) -> list[Person]:
    """The people told about a unit's decisions, meetings and autonomy: its lead, its
    accountable executive and its budget holder, each once."""
    found: dict[int, Person] = {}
    for person in (unit.lead, unit.accountable_executive, unit.budget_holder):
        if person is not None:
            found.setdefault(person.id, person)
    return list(found.values())


def open_cases_for_unit(unit: Unit) -> list[EscalationCase]:
    """Make sure the unit has a case on each fixed track of its framework, at the lowest level.

    Per-measure tracks (framework C) get their cases when the measure is added.
    """
    framework = get_framework(unit.framework)
    created = []
    for track in framework.tracks.values():
        if track.per_measure:
            continue
        created.extend(_ensure_case(unit, framework.name, track.name, framework))
    return created


def _ensure_case(unit: Unit, framework_name: str, track_key: str, framework) -> list:
    exists = db.session.scalar(
        sa.select(EscalationCase.id).where(
            EscalationCase.unit_id == unit.id,
            EscalationCase.framework == framework_name,
            EscalationCase.track == track_key,
        )
    )
    if exists is not None:
        return []
    level = framework.initial_level(track_key)
    case = EscalationCase(unit=unit, framework=framework_name, track=track_key, level=level)
    db.session.add(case)
    db.session.flush()
    db.session.add(LevelChange(case_id=case.id, from_level=None, to_level=level))
    return [case]


def _check_unit_values(values: dict[str, Any], unit_id: int | None) -> None:
    clash = db.session.scalar(
        sa.select(Unit.id).where(Unit.code == values["code"], Unit.id != (unit_id or -1))
    )
    if clash is not None:
        raise ServiceError(f"A unit with the code {values['code']} already exists")
    try:
        get_framework(values["framework"])
    except (KeyError, FileNotFoundError):
        raise ServiceError(f"There is no framework called {values['framework']!r}") from None
    if unit_id is not None and values.get("parent_id") == unit_id:
        raise ServiceError("A unit cannot be its own parent")


def create_unit(actor: Person, **values: Any) -> Unit:
    """Add a unit and open its cases at the framework's lowest level."""
    require(can_manage_units(actor), "Only the performance team can add units")
    values.setdefault("is_active", True)
    _check_unit_values(values, None)
    unit = Unit(**{k: values[k] for k in UNIT_FIELDS if k in values})
    db.session.add(unit)
    db.session.flush()
    open_cases_for_unit(unit)
    record_event(
        "unit.created",
        object_type="unit",
        object_id=unit.id,
        summary=f"Added unit {unit.code} {unit.name}",
        actor=actor,
        details=_snapshot(unit, UNIT_FIELDS),
    )
    return unit


def update_unit(actor: Person, unit: Unit, **values: Any) -> None:
    """Change a unit's details; the audit row records before and after."""
    require(can_manage_units(actor), "Only the performance team can change units")
    _check_unit_values({**_snapshot(unit, UNIT_FIELDS), **values}, unit.id)
    before = _snapshot(unit, UNIT_FIELDS)
    for key in UNIT_FIELDS:
        if key in values:
            setattr(unit, key, values[key])
    db.session.flush()
    open_cases_for_unit(unit)
    changes = _changes(before, _snapshot(unit, UNIT_FIELDS))
    if changes:
        record_event(
            "unit.updated",
            object_type="unit",
            object_id=unit.id,
            summary=f"Changed unit {unit.code}: {', '.join(sorted(changes))}",
            actor=actor,
            details=changes,
        )


def _check_measure_values(values: dict[str, Any], unit: Unit, measure_id: int | None) -> None:
    clash = db.session.scalar(
        sa.select(Measure.id).where(
            Measure.unit_id == unit.id,
            Measure.code == values["code"],
            Measure.id != (measure_id or -1),
        )
    )
    if clash is not None:
        raise ServiceError(f"{unit.code} already has a measure with the code {values['code']}")
    tolerance = values.get("tolerance")
    if tolerance is not None and Decimal(tolerance) < 0:
        raise ServiceError("Tolerance cannot be negative")


def create_measure(actor: Person, unit: Unit, **values: Any) -> Measure:
    """Add a measure (KPI) with its target to a unit."""
    require(can_manage_units(actor), "Only the performance team can add measures")
    values.setdefault("is_active", True)
    _check_measure_values(values, unit, None)
    measure = Measure(unit_id=unit.id, **{k: values[k] for k in MEASURE_FIELDS if k in values})
    db.session.add(measure)
    db.session.flush()
    framework = get_framework(unit.framework)
    if any(track.per_measure for track in framework.tracks.values()):
        _ensure_case(unit, framework.name, f"measure:{measure.code}", framework)
    record_event(
        "measure.created",
        object_type="measure",
        object_id=measure.id,
        summary=f"Added measure {measure.code} to {unit.code}",
        actor=actor,
        details=_snapshot(measure, MEASURE_FIELDS),
    )
    return measure


def update_measure(actor: Person, measure: Measure, **values: Any) -> None:
    """Change a measure's definition or target; the audit row records before and after."""
    require(can_manage_units(actor), "Only the performance team can change measures")
    _check_measure_values(
        {**_snapshot(measure, MEASURE_FIELDS), **values}, measure.unit, measure.id
    )
    before = _snapshot(measure, MEASURE_FIELDS)
    for key in MEASURE_FIELDS:
        if key in values:
            setattr(measure, key, values[key])
    db.session.flush()
    changes = _changes(before, _snapshot(measure, MEASURE_FIELDS))
    if changes:
        record_event(
            "measure.updated",
            object_type="measure",
            object_id=measure.id,
            summary=f"Changed measure {measure.code} of {measure.unit.code}: "
            + ", ".join(sorted(changes)),
            actor=actor,
            details=changes,
        )
