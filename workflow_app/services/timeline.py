"""The case timeline: everything that happened on one case, in order, with who and when.

One list merged from the records each part of the engine keeps: the case opening and its level
changes, decisions (proposed, each signature, rejected or superseded), letters, recovery-plan
versions and status changes, meetings, deadlines (set, done) and the reminders sent. A fixed
number of queries per case, each loading the people it names eagerly. Times stay UTC here;
the page shows them in Europe/London.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from state_machines import get_framework
from state_machines.plan_review import STATUS_TITLES
from workflow_app.clock import as_utc, to_london
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase
from workflow_app.models.deadlines import REMINDER_KINDS, Deadline, Reminder
from workflow_app.models.letters import Letter
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Person
from workflow_app.models.plans import PlanStatusChange, PlanVersion, RecoveryPlan
from workflow_app.models.roles import ROLE_TITLES

#: Event kinds, in the order they are listed when two share the same instant.
KINDS = ("opened", "decision", "signature", "level", "letter", "plan", "meeting", "deadline",
         "reminder")  # fmt: skip
KIND_TITLES = {
    "opened": "Case",
    "decision": "Decision",
    "signature": "Signature",
    "level": "Level",
    "letter": "Letter",
    "plan": "Plan",
    "meeting": "Meeting",
    "deadline": "Deadline",
    "reminder": "Reminder",
}
ENGINE = "Escalate (monthly review)"
SYSTEM = "Escalate"


@dataclass(frozen=True)
class TimelineEvent:
    """One thing that happened: when (UTC), what kind, what, who, and where to read more."""

    at: datetime
    kind: str
    title: str
    who: str = ""
    detail: str = ""
    # (endpoint, url_for arguments) of the page about it, or None.
    link: tuple[str, dict[str, Any]] | None = field(default=None, compare=False)

    @property
    def kind_title(self) -> str:
        """The kind as a word for the page."""
        return KIND_TITLES[self.kind]


def _name(person: Person | None, default: str = SYSTEM) -> str:
    return person.name if person is not None else default


def case_timeline(case: EscalationCase) -> list[TimelineEvent]:
    """Every recorded event of ``case``, oldest first."""
    framework = get_framework(case.framework)
    events = [TimelineEvent(case.opened_at, "opened", "Case opened", _by(SYSTEM))]
    decisions = _decisions(case)
    events += _level_events(case, framework, decisions)
    events += _decision_events(framework, decisions)
    events += _letter_events(case)
    events += _plan_events(case)
    events += _meeting_events(case)
    events += _deadline_events(case)
    order = {kind: index for index, kind in enumerate(KINDS)}
    return sorted(events, key=lambda event: (as_utc(event.at), order[event.kind]))


def _decisions(case: EscalationCase) -> dict[int, Decision]:
    rows = db.session.scalars(
        sa.select(Decision)
        .where(Decision.case_id == case.id)
        .order_by(Decision.proposed_at, Decision.id)
        .options(
            so.joinedload(Decision.proposed_by),
            so.selectinload(Decision.signatures).joinedload(DecisionSignature.person),
            so.selectinload(Decision.signatures).joinedload(DecisionSignature.on_behalf_of),
        )
    )
    return {decision.id: decision for decision in rows}


def _by(who: str) -> str:
    return f"by {who}"


def _signers(decision: Decision | None) -> str:
    if decision is None:
        return SYSTEM
    return ", ".join(s.person.name for s in decision.signatures) or SYSTEM


def _level_events(case, framework, decisions) -> list[TimelineEvent]:
    events = []
    for change in case.level_changes:
        decision = decisions.get(change.decision_id)
        if change.from_level is None:
            title = f"Opened at {framework.level_title(change.to_level)}"
        else:
            title = (
                f"{framework.level_title(change.from_level)} → "
                f"{framework.level_title(change.to_level)}"
            )
        link = ("decisions.show", {"decision_id": decision.id}) if decision else None
        events.append(
            TimelineEvent(change.changed_at, "level", title, _by(_signers(decision)), link=link)
        )
    return events


def _decision_events(framework, decisions) -> list[TimelineEvent]:
    events = []
    for decision in decisions.values():
        link = ("decisions.show", {"decision_id": decision.id})
        if decision.kind in ("notice", "earned_autonomy"):
            change = (
                f"{decision.kind.replace('_', ' ')} at {framework.level_title(decision.to_level)}"
            )
        else:
            change = (
                f"{framework.level_title(decision.from_level)} → "
                f"{framework.level_title(decision.to_level)}"
            )
        proposer = ENGINE if decision.origin == "engine" else _name(decision.proposed_by, ENGINE)
        events.append(
            TimelineEvent(
                decision.proposed_at,
                "decision",
                f"Proposed: {change}",
                _by(proposer),
                decision.reason,
                link,
            )
        )
        for signature in decision.signatures:
            behalf = (
                f" (delegate of {signature.on_behalf_of.name})" if signature.on_behalf_of else ""
            )
            events.append(
                TimelineEvent(
                    signature.signed_at,
                    "signature",
                    f"Signed: {signature.meaning}",
                    _by(f"{signature.person.name} as {_role_title(signature.role)}{behalf}"),
                    link=link,
                )
            )
        if decision.status in ("rejected", "superseded") and decision.decided_at:
            events.append(
                TimelineEvent(
                    decision.decided_at,
                    "decision",
                    f"{decision.status.capitalize()}: {change}",
                    _by(_signers(decision) if decision.status == "rejected" else SYSTEM),
                    decision.decision_note,
                    link,
                )
            )
    return events


def _role_title(role: str) -> str:
    return ROLE_TITLES.get(role, role.replace("_", " "))


def _letter_events(case) -> list[TimelineEvent]:
    letters = db.session.scalars(
        sa.select(Letter)
        .where(Letter.case_id == case.id)
        .order_by(Letter.issued_at, Letter.id)
        .options(so.joinedload(Letter.issued_by))
    )
    return [
        TimelineEvent(
            letter.issued_at,
            "letter",
            f"Letter issued: {letter.kind.replace('_', ' ')} ({letter.reference})"
            + (f", version {letter.version}" if letter.version > 1 else ""),
            _by(_name(letter.issued_by)),
            link=("letters.show", {"letter_id": letter.id}),
        )
        for letter in letters
    ]


def _plan_events(case) -> list[TimelineEvent]:
    plans = db.session.scalars(
        sa.select(RecoveryPlan)
        .where(RecoveryPlan.case_id == case.id)
        .options(
            so.selectinload(RecoveryPlan.versions).joinedload(PlanVersion.submitted_by),
            so.selectinload(RecoveryPlan.versions).joinedload(PlanVersion.reviewed_by),
            so.selectinload(RecoveryPlan.status_changes).joinedload(PlanStatusChange.actor),
        )
    )
    events = []
    for plan in plans:
        plan_link = ("plans.show", {"plan_id": plan.id})
        for version in plan.versions:
            link = ("plans.version", {"plan_id": plan.id, "number": version.number})
            events.append(
                TimelineEvent(
                    version.submitted_at,
                    "plan",
                    f"{plan.title}: version {version.number} submitted",
                    _by(_name(version.submitted_by)),
                    link=link,
                )
            )
        # Submissions are listed as versions above; every other step as a status change.
        for change in plan.status_changes:
            if change.to_status == "submitted":
                continue
            title = (
                f"{plan.title}: started as a draft"
                if change.from_status is None
                else f"{plan.title}: {STATUS_TITLES.get(change.to_status, change.to_status)}"
            )
            events.append(
                TimelineEvent(
                    change.changed_at,
                    "plan",
                    title,
                    _by(_name(change.actor)),
                    change.note,
                    plan_link,
                )
            )
    return events


def _meeting_events(case) -> list[TimelineEvent]:
    meetings = db.session.scalars(
        sa.select(Meeting)
        .where(Meeting.case_id == case.id)
        .order_by(Meeting.requested_at, Meeting.id)
        .options(
            so.joinedload(Meeting.created_by),
            so.joinedload(Meeting.chair),
            so.joinedload(Meeting.minutes_recorded_by),
        )
    )
    events = []
    for meeting in meetings:
        link = ("meetings.show", {"meeting_id": meeting.id})
        events.append(
            TimelineEvent(
                meeting.requested_at,
                "meeting",
                f"Meeting requested: {meeting.title}",
                _by(_name(meeting.created_by)),
                link=link,
            )
        )
        if meeting.starts_at and meeting.status in ("scheduled", "held"):
            verb = "held" if meeting.status == "held" else "scheduled"
            events.append(
                TimelineEvent(
                    meeting.starts_at,
                    "meeting",
                    f"Meeting {verb}: {meeting.title}",
                    f"chaired by {meeting.chair.name}" if meeting.chair else "",
                    meeting.location,
                    link,
                )
            )
        if meeting.minutes_recorded_at:
            events.append(
                TimelineEvent(
                    meeting.minutes_recorded_at,
                    "meeting",
                    f"Minutes recorded: {meeting.title}",
                    _by(_name(meeting.minutes_recorded_by)),
                    link=link,
                )
            )
    return events


def _people(ids: set[int]) -> dict[int, Person]:
    if not ids:
        return {}
    return {p.id: p for p in db.session.scalars(sa.select(Person).where(Person.id.in_(ids)))}


def _deadline_events(case) -> list[TimelineEvent]:
    deadlines = list(
        db.session.scalars(
            sa.select(Deadline)
            .where(Deadline.case_id == case.id)
            .order_by(Deadline.created_at, Deadline.id)
            .options(so.joinedload(Deadline.owner))
        )
    )
    completers = _people({d.completed_by_id for d in deadlines if d.completed_by_id})
    events = []
    for deadline in deadlines:
        link = ("deadlines.show", {"deadline_id": deadline.id})
        events.append(
            TimelineEvent(
                deadline.created_at,
                "deadline",
                f"Deadline set: {deadline.title}",
                f"owner {deadline.owner.name}" if deadline.owner else "",
                f"due {to_london(deadline.due_at):%H:%M on %-d %B %Y}",
                link,
            )
        )
        if deadline.status == "done" and deadline.completed_at:
            completer = completers.get(deadline.completed_by_id)
            events.append(
                TimelineEvent(
                    deadline.completed_at,
                    "deadline",
                    f"Done: {deadline.title}",
                    _by(_name(completer)),
                    link=link,
                )
            )
    reminders = db.session.scalars(
        sa.select(Reminder)
        .join(Deadline, Deadline.id == Reminder.deadline_id)
        .where(Deadline.case_id == case.id, Reminder.status == "sent")
        .order_by(Reminder.processed_at, Reminder.id)
        .options(so.contains_eager(Reminder.deadline), so.joinedload(Reminder.recipient))
    )
    for reminder in reminders:
        events.append(
            TimelineEvent(
                reminder.processed_at or reminder.send_at,
                "reminder",
                f"Reminder sent: {reminder.deadline.title} "
                f"({REMINDER_KINDS.get(reminder.kind, reminder.kind).lower()})",
                f"to {reminder.recipient.name}",
                link=("deadlines.show", {"deadline_id": reminder.deadline_id}),
            )
        )
    return events
