"""The data model, one module per aggregate. Importing this package registers every table."""

from workflow_app.models.api_tokens import ApiToken
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import (
    Concern,
    Decision,
    DecisionSignature,
    Delegation,
    EscalationCase,
    LevelChange,
)
from workflow_app.models.deadlines import Deadline, DeadlinePause, DigestItem, JobRun, Reminder
from workflow_app.models.imports import ImportBatch
from workflow_app.models.letters import Letter
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.meetings import Meeting, MeetingInvitee
from workflow_app.models.org import Domain, PasswordResetToken, Person, RoleGrant, Unit
from workflow_app.models.outbox import OutboxAttachment, OutboxMessage
from workflow_app.models.plans import (
    PlanAction,
    PlanActionUpdate,
    PlanReviewComment,
    PlanStatusChange,
    PlanTrajectoryPoint,
    PlanVersion,
    RecoveryPlan,
)
from workflow_app.models.reports import IssuedReport

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Concern",
    "Deadline",
    "DeadlinePause",
    "Decision",
    "DecisionSignature",
    "Delegation",
    "DigestItem",
    "Domain",
    "EscalationCase",
    "FinancePosition",
    "ImportBatch",
    "IssuedReport",
    "JobRun",
    "Letter",
    "LevelChange",
    "Measure",
    "Meeting",
    "MeetingInvitee",
    "MonthlyActual",
    "OutboxAttachment",
    "OutboxMessage",
    "PasswordResetToken",
    "Person",
    "PlanAction",
    "PlanActionUpdate",
    "PlanReviewComment",
    "PlanStatusChange",
    "PlanTrajectoryPoint",
    "PlanVersion",
    "RecoveryPlan",
    "Reminder",
    "RoleGrant",
    "TrajectoryValue",
    "Unit",
]
