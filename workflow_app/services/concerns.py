"""Recording concerns: qualitative intelligence about a unit (DOMAIN.md decision 6)."""

from __future__ import annotations

from datetime import date

from workflow_app.clock import today_london
from workflow_app.extensions import db
from workflow_app.models.cases import CONCERN_KINDS, CONCERN_SEVERITIES, Concern
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError, require


def can_record_concern(person: Person | None) -> bool:
    """The performance team and executives record concerns (issue: evaluation)."""
    return bool(person and getattr(person, "is_authenticated", False)) and person.has_role(
        PERFORMANCE_TEAM, CEO, EXECUTIVE_DIRECTOR
    )


def record_concern(
    actor: Person,
    unit: Unit,
    *,
    domain: Domain,
    kind: str,
    severity: str,
    summary: str,
    evidence: str = "",
    occurred_on: date | None = None,
) -> Concern:
    """Record a concern against a unit and domain; it becomes evidence for the review."""
    require(can_record_concern(actor), "Only the performance team or an executive can do this")
    if kind not in CONCERN_KINDS:
        raise ServiceError("Choose what kind of concern this is")
    if severity not in CONCERN_SEVERITIES:
        raise ServiceError("Choose how severe the concern is")
    if not summary.strip():
        raise ServiceError("Summarise the concern")
    if occurred_on is not None and occurred_on > today_london():
        raise ServiceError("The date it happened cannot be in the future")
    concern = Concern(
        unit_id=unit.id,
        domain_id=domain.id,
        kind=kind,
        severity=severity,
        summary=summary.strip(),
        evidence=evidence.strip(),
        occurred_on=occurred_on,
        recorded_by_id=actor.id,
    )
    db.session.add(concern)
    db.session.flush()
    record_event(
        "concern.recorded",
        object_type="concern",
        object_id=concern.id,
        summary=f"Concern recorded for {unit.name}: {CONCERN_KINDS[kind]} ({severity}): "
        f"{concern.summary}",
        actor=actor,
    )
    return concern
