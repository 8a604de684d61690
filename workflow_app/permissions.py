"""Who may do what. Views check these and so do services (defence in depth).

Names follow ``can_<verb>(person, ...)`` (Indico). A directorate lead or budget holder sees
only their own units; organisation-wide roles see every unit.
"""

from __future__ import annotations

import sqlalchemy as sa

from workflow_app.models.org import Person, Unit
from workflow_app.models.roles import PERFORMANCE_TEAM, SYSTEM_ADMIN


def _signed_in(person: Person | None) -> bool:
    return person is not None and getattr(person, "is_authenticated", False)


def can_view_unit(person: Person | None, unit: Unit) -> bool:
    """Organisation-wide roles see every unit; others see the units they lead or hold."""
    if not _signed_in(person):
        return False
    if person.sees_whole_organisation:
        return True
    return person.id in (unit.lead_id, unit.budget_holder_id)


def visible_units_filter(person: Person) -> sa.ColumnElement[bool]:
    """A WHERE clause selecting the units ``person`` may see."""
    if person.sees_whole_organisation:
        return sa.true()
    return sa.or_(Unit.lead_id == person.id, Unit.budget_holder_id == person.id)


def can_manage_units(person: Person | None) -> bool:
    """Units, measures and targets are maintained by the performance team (DOMAIN.md)."""
    return _signed_in(person) and person.has_role(PERFORMANCE_TEAM, SYSTEM_ADMIN)


def can_manage_people(person: Person | None) -> bool:
    """People, role grants, disabling and resets belong to the system administrator."""
    return _signed_in(person) and person.has_role(SYSTEM_ADMIN)


def can_read_outbox(person: Person | None) -> bool:
    """The local mail outbox is readable by administrators."""
    return _signed_in(person) and person.has_role(SYSTEM_ADMIN, PERFORMANCE_TEAM)


def can_read_audit(person: Person | None) -> bool:
    """The audit trail is open to every organisation-wide role (committees included)."""
    return _signed_in(person) and person.sees_whole_organisation
