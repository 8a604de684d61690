"""The data model, one module per aggregate. Importing this package registers every table."""

from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import (
    Concern,
    Decision,
    DecisionSignature,
    EscalationCase,
    LevelChange,
)
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Domain, PasswordResetToken, Person, RoleGrant, Unit
from workflow_app.models.outbox import OutboxMessage

__all__ = [
    "AuditEvent",
    "Concern",
    "Decision",
    "DecisionSignature",
    "Domain",
    "EscalationCase",
    "FinancePosition",
    "LevelChange",
    "Measure",
    "MonthlyActual",
    "OutboxMessage",
    "PasswordResetToken",
    "Person",
    "RoleGrant",
    "TrajectoryValue",
    "Unit",
]
