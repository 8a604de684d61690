"""Deciding proposals: signatures, the state machine, and the consequences, in one transaction.

DOMAIN.md decision 2: a decision takes effect when the signatures its framework rule requires
are complete (one executive on behalf of the Executive Team naming the meeting; or two named
roles in sequence). The signature that completes it applies the transition through the
framework's state machine, writes the level history and the audit row, and creates the
framework's consequences: the letter, the deadlines, the cadence and the notifications.
Exactly one decision wins a race: the decision row moves from ``pending`` by a conditional
UPDATE and the case's version column guards its level (DESIGN.md principle 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from state_machines import IllegalTransition, apply_transition, get_framework
from workflow_app.clock import to_london, utcnow
from workflow_app.extensions import db
from workflow_app.letters.store import issue_letter
from workflow_app.models.cases import (
    Decision,
    DecisionSignature,
    Delegation,
    EscalationCase,
    LevelChange,
)
from workflow_app.models.deadlines import Deadline
from workflow_app.models.org import Person
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM, ROLE_TITLES
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.services.audit import record_event
from workflow_app.services.cadence import replan_cadence
from workflow_app.services.deadlines import cancel_deadline, create_deadline
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.org import unit_contacts
from workflow_app.services.passwords import check_password
from workflow_app.services.signatures import payload_sha256, signature_payload

OUTCOMES = ("approve", "reject")


@dataclass(frozen=True)
class SigningCapacity:
    """In which role a person may sign, and for whom if as a delegate."""

    role: str
    on_behalf_of: Person | None = None


def active_delegations(person: Person, at: datetime) -> list[Delegation]:
    """Delegations to ``person`` in force at ``at``."""
    return list(
        db.session.scalars(
            sa.select(Delegation).where(
                Delegation.delegate_id == person.id,
                Delegation.starts_at <= at,
                Delegation.ends_at > at,
                Delegation.revoked_at.is_(None),
            )
        )
    )


def signing_capacity(person: Person, decision: Decision, at: datetime) -> SigningCapacity | None:
    """The role ``person`` may sign ``decision`` in next, directly or as a delegate."""
    framework = get_framework(decision.case.framework)
    rule = framework.signatures[decision.signature_rule]
    signed = [s.role for s in decision.signatures]
    if any(s.person_id == person.id for s in decision.signatures):
        return None
    if rule.sequence:
        wanted = [rule.sequence[len(signed)]] if len(signed) < len(rule.sequence) else []
    else:
        wanted = list(rule.any_of)
    return _capacity_in(person, wanted, at)


def _capacity_in(person: Person, wanted: list[str], at: datetime) -> SigningCapacity | None:
    """The first of the ``wanted`` roles ``person`` holds, directly or as a delegate."""
    for role in wanted:
        if role in person.roles:
            return SigningCapacity(role)
    for delegation in active_delegations(person, at):
        if delegation.role in wanted and delegation.role in delegation.delegator.roles:
            return SigningCapacity(delegation.role, delegation.delegator)
    return None


def _meaning(
    outcome: str, decision: Decision, capacity: SigningCapacity, rule, meeting: str
) -> str:
    verb = "Approved" if outcome == "approve" else "Rejected"
    body = {"executive_team": " on behalf of the Executive Team"}.get(decision.signature_rule, "")
    text = f"{verb}{body}"
    if meeting:
        text += f" at {meeting}"
    return text


def decide_proposal(
    actor: Person,
    decision: Decision,
    *,
    outcome: str,
    reason: str,
    password: str,
    to_level: str | None = None,
    meeting_reference: str = "",
    support_options: dict | None = None,
    now: datetime | None = None,
) -> Decision:
    """Sign a pending decision: approve (optionally at another declared level) or reject.

    :raises PermissionDenied: the actor may not sign this decision (role, sequence).
    :raises Conflict: someone else decided it first ("already decided by X at T").
    :raises ServiceError: wrong password, missing reason or meeting, an illegal level.
    """
    now = now or utcnow()
    if outcome not in OUTCOMES:
        raise ServiceError("Choose to approve or reject")
    if not check_password(actor.password_hash, password):
        raise ServiceError("Your password was not correct, so nothing was signed")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give the reason for your decision")
    if decision.status != "pending":
        raise Conflict(_already_decided(decision))
    case = decision.case
    framework = get_framework(case.framework)
    if decision.from_level != case.level:
        raise Conflict(
            f"The case has moved to {framework.level_title(case.level)} since this was proposed; "
            "nothing was signed"
        )
    if outcome == "approve" and to_level and to_level != decision.to_level:
        transition = framework.transition(case.track, case.level, to_level)
        if transition is None:
            raise ServiceError(
                f"The framework does not allow a move from {framework.level_title(case.level)} "
                f"to {framework.level_title(to_level)}"
            )
        decision.decision_note = (
            f"Amended from {framework.level_title(decision.to_level)} to "
            f"{framework.level_title(to_level)}: {reason}"
        )
        decision.to_level = to_level
        decision.signature_rule = transition.signed_by
    rule = framework.signatures[decision.signature_rule]
    capacity = signing_capacity(actor, decision, now)
    if capacity is None:
        raise PermissionDenied(
            f"This decision needs {_who(rule, framework)}; your roles do not allow you to sign it"
        )
    if rule.record_meeting and outcome == "approve" and not meeting_reference.strip():
        raise ServiceError("Name the meeting where this was agreed")
    if meeting_reference.strip():
        decision.meeting_reference = meeting_reference.strip()
    signature = _signature(
        decision,
        case,
        actor,
        capacity,
        _meaning(outcome, decision, capacity, rule, meeting_reference.strip()),
        now,
        outcome=outcome,
        reason=reason,
    )
    decision.signatures.append(signature)  # keeps the loaded collection current
    db.session.flush()
    record_event(
        f"decision.signed_{outcome}",
        object_type="decision",
        object_id=decision.id,
        summary=f"{actor.name} signed ({signature.meaning}) as "
        f"{ROLE_TITLES.get(capacity.role, capacity.role)}"
        + (f", delegate of {capacity.on_behalf_of.name}" if capacity.on_behalf_of else ""),
        actor=actor,
        details={"reason": reason, "outcome": outcome},
    )
    if outcome == "reject":
        _complete(decision, "rejected", now)
        decision.decision_note = decision.decision_note or f"Rejected: {reason}"
        return decision
    if len(decision.signatures) < rule.count:
        return decision  # waiting for the next signature
    if support_options:
        decision.support_options = json.dumps(support_options, sort_keys=True)
    _complete(decision, "approved", now)
    _apply(decision, actor, now)
    return decision


def _signature(
    decision: Decision, case, actor: Person, capacity, meaning: str, now, *, outcome, reason
) -> DecisionSignature:
    """A signature with its manifestation: the case's version and the hash of what it signs."""
    on_behalf_of_id = capacity.on_behalf_of.id if capacity.on_behalf_of else None
    payload = signature_payload(
        decision=decision,
        case=case,
        person_id=actor.id,
        role=capacity.role,
        meaning=meaning,
        on_behalf_of_id=on_behalf_of_id,
        signed_at=now,
        outcome=outcome,
        reason=reason,
    )
    return DecisionSignature(
        person_id=actor.id,
        role=capacity.role,
        meaning=meaning,
        on_behalf_of_id=on_behalf_of_id,
        signed_at=now,
        case_version=case.version,
        payload_sha256=payload_sha256(payload),
    )


def _who(rule, framework) -> str:
    roles = rule.sequence or rule.any_of
    names = [framework.decider_roles.get(r, r) for r in roles]
    joiner = " then " if rule.sequence else " or "
    return joiner.join(names)


def _already_decided(decision: Decision) -> str:
    last = decision.signatures[-1] if decision.signatures else None
    when = to_london(decision.decided_at) if decision.decided_at else None
    who = f" by {last.person.name}" if last else ""
    at = f" at {when:%H:%M on %d %b %Y}" if when else ""
    return f"This was already {decision.status}{who}{at}; nothing you sent was signed"


def _complete(decision: Decision, status: str, now: datetime) -> None:
    won = db.session.execute(
        sa.update(Decision)
        .where(Decision.id == decision.id, Decision.status == "pending")
        .values(status=status, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:
        db.session.rollback()
        db.session.refresh(decision)
        raise Conflict(_already_decided(decision))
    # The row already says so: tell the session without a second UPDATE.
    set_committed_value(decision, "status", status)
    set_committed_value(decision, "decided_at", now)


def _apply(decision: Decision, actor: Person, now: datetime) -> None:
    case = decision.case
    framework = get_framework(case.framework)
    if decision.kind == "earned_autonomy":  # no level change: lighter cadence (0019)
        from workflow_app.services.autonomy import grant_earned_autonomy

        return grant_earned_autonomy(decision, actor, now)
    try:
        new_level = apply_transition(framework, case.track, case.level, decision.to_level)
    except IllegalTransition as illegal:
        raise ServiceError(str(illegal)) from None
    old_level = case.level
    case.level = new_level
    case.level_since = now
    db.session.add(
        LevelChange(
            case_id=case.id,
            from_level=old_level,
            to_level=new_level,
            decision_id=decision.id,
            changed_at=now,
        )
    )
    db.session.flush()  # the case's version check: a concurrent change raises StaleDataError
    from workflow_app.services.autonomy import after_level_change

    after_level_change(case, old_level, new_level, actor, now)  # escalation ends autonomy
    record_event(
        "decision.approved",
        object_type="decision",
        object_id=decision.id,
        summary=f"{case.unit.name}, {framework.track_for(case.track).title}: "
        f"{framework.level_title(old_level)} to {framework.level_title(new_level)}",
        actor=actor,
    )
    for other in db.session.scalars(
        sa.select(Decision).where(
            Decision.case_id == case.id, Decision.status == "pending", Decision.id != decision.id
        )
    ):
        other.status = "superseded"
        other.decided_at = now
    create_consequences(decision, old_level, actor, now)


def create_consequences(decision: Decision, old_level: str, actor: Person, now: datetime) -> None:
    """The framework's consequences of a decided transition (DOMAIN.md "what follows")."""
    case = decision.case
    framework = get_framework(case.framework)
    transition = framework.transition(case.track, old_level, case.level)
    spec = framework.consequences_for(transition) if transition else {}
    if transition is not None and transition.direction == "down":
        _close_obligations_of_higher_levels(decision, actor, now)
    first_due = None
    for item in spec.get("deadlines", []):
        deadline = create_deadline(
            dedupe_key=f"decision:{decision.id}:{item['kind']}",
            kind=item["kind"],
            title=item["kind"].replace("_", " ").capitalize(),
            unit=case.unit,
            framework=case.framework,
            case=case,
            working_days=int(str(item["in"]).split()[0]),
            starting=now,
            actor=actor,
            now=now,
        )
        first_due = first_due or deadline.due_at
    letter = None
    if spec.get("letter"):
        extra = {}
        options = json.loads(decision.support_options or "{}")
        if options:
            extra["support_options"] = [name.replace("_", " ") for name in options]
        letter = issue_letter(
            case=case,
            decision=decision,
            kind=spec["letter"],
            issued_by=actor,
            response_due_at=first_due,
            context_extra=extra or None,
            issued_at=now,
        )
    _support_option_consequences(decision, actor, now)
    if spec.get("meeting"):
        from workflow_app.services.meetings import request_meetings_for_decision

        request_meetings_for_decision(decision, spec["meeting"], actor, now)
    replan_cadence(case, now=now)
    for person in unit_contacts(case.unit):
        queue_email(
            kind="decision",
            dedupe_key=f"decision:{decision.id}:notify:{person.id}",
            recipient=person,
            subject=f"{case.unit.name}: {framework.track_for(case.track).title} now at "
            f"{framework.level_title(case.level)}",
            template="decision",
            link=absolute_url(f"/cases/{case.id}"),
            decision=decision,
            case=case,
            framework=framework,
            letter=letter,
            hold_for_letter=letter,
            # Keyed by this decision, which this transaction has just moved from pending
            # (``_complete``): no such message can exist yet, so no look-up or flush each.
            known_new=True,
        )


def _close_obligations_of_higher_levels(decision: Decision, actor: Person, now: datetime) -> None:
    """On a step down, the one-off obligations earlier decisions created no longer apply.

    E.g. a "Recovery plan due" from the escalation to 2a, still open when the unit is stepped
    back down to 1, is cancelled with the reason rather than left to send reminders. Recurring
    cadence obligations are re-planned separately (``replan_cadence``).
    """
    case = decision.case
    title = get_framework(case.framework).level_title(case.level)
    still_open = db.session.scalars(
        sa.select(Deadline).where(
            Deadline.case_id == case.id,
            Deadline.status.in_(("open", "paused")),
            Deadline.dedupe_key.like("decision:%"),
            Deadline.dedupe_key.notlike(f"decision:{decision.id}:%"),
        )
    ).all()
    for deadline in still_open:
        cancel_deadline(deadline, f"level stepped down to {title}", actor=actor)


SUPPORT_OPTION_DEADLINES = {
    # DOMAIN.md decision 7: each chosen option creates its consequences (seed 000, 7.8 table).
    "independent_review": ("Independent review commissioned and reported", 20),
    "leadership_change": ("Leadership arrangements agreed and in place", 20),
    "hr_policies": ("HR policy actions agreed with Workforce & OD", 10),
}


def _support_option_consequences(decision: Decision, actor: Person, now: datetime) -> None:
    """The CEO's chosen Level 3 support options become obligations and cadence."""
    case = decision.case
    for name in json.loads(decision.support_options or "{}"):
        if name in SUPPORT_OPTION_DEADLINES:
            title, days = SUPPORT_OPTION_DEADLINES[name]
            create_deadline(
                dedupe_key=f"decision:{decision.id}:option:{name}",
                kind=f"support_option:{name}",
                title=title,
                unit=case.unit,
                framework=case.framework,
                case=case,
                owner=case.unit.accountable_executive,
                working_days=days,
                starting=now,
                actor=actor,
                now=now,
            )
        # ceo_progress_meetings: the cadence reads the chosen option (services/cadence.py).


def can_raise_escalation(person: Person | None) -> bool:
    """Executives and the performance team may raise an escalation by hand."""
    return bool(person and getattr(person, "is_authenticated", False)) and person.has_role(
        CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM
    )


def raise_escalation(
    actor: Person,
    case: EscalationCase,
    *,
    to_level: str,
    reason: str,
    evidence_note: str,
    now: datetime | None = None,
) -> Decision:
    """A proposal raised by hand (judgement): mandatory reason and evidence note."""
    if not can_raise_escalation(actor):
        raise PermissionDenied("Only an executive or the performance team can raise this")
    if not (reason or "").strip():
        raise ServiceError("Give the reason for raising this")
    if not (evidence_note or "").strip():
        raise ServiceError("Describe the evidence")
    framework = get_framework(case.framework)
    transition = framework.transition(case.track, case.level, to_level)
    if transition is None:
        raise ServiceError(
            f"The framework does not allow a move from {framework.level_title(case.level)} to "
            f"{framework.level_title(to_level)}"
        )
    decision = Decision(
        case_id=case.id,
        kind="escalate" if transition.direction == "up" else "de_escalate",
        from_level=case.level,
        to_level=to_level,
        status="pending",
        signature_rule=transition.signed_by,
        reason=reason.strip(),
        evidence=json.dumps({"note": evidence_note.strip()}),
        origin="manual",
        proposed_by_id=actor.id,
        proposed_at=now or utcnow(),
    )
    db.session.add(decision)
    db.session.flush()
    record_event(
        "proposal.raised",
        object_type="decision",
        object_id=decision.id,
        summary=f"{actor.name} raised {framework.level_title(case.level)} to "
        f"{framework.level_title(to_level)} for {case.unit.name}: {reason.strip()}",
        actor=actor,
    )
    return decision


def formal_notification_capacity(
    person: Person | None, case: EscalationCase, at: datetime | None = None
) -> SigningCapacity | None:
    """The role in which ``person`` may issue a formal notification on ``case``'s framework
    (directly or as a delegate), whatever the case's level; None if they may not, or if the
    framework has no formal notifications."""
    if not (person and getattr(person, "is_authenticated", False)):
        return None
    framework = get_framework(case.framework)
    rules = framework.formal_notifications or {}
    if not rules:
        return None
    rule = framework.signatures[rules["signed_by"]]
    wanted = list(rule.sequence[:1]) if rule.sequence else list(rule.any_of)
    return _capacity_in(person, wanted, at or utcnow())


def formal_notification_kinds(case: EscalationCase) -> list[str]:
    """The kinds of formal notification the framework allows at ``case``'s current level."""
    rules = get_framework(case.framework).formal_notifications or {}
    if case.level not in rules.get("allowed_at", []):
        return []
    return list(rules.get("kinds", []))


def formal_notification_refusal(case: EscalationCase) -> str | None:
    """Why no formal notification can be issued at ``case``'s level, or None if one can."""
    framework = get_framework(case.framework)
    rules = framework.formal_notifications or {}
    if not rules:
        return f"The {framework.title} has no formal notifications"
    allowed = rules.get("allowed_at", [])
    if case.level not in allowed:
        return (
            "Formal notifications can be issued at "
            f"{' and '.join(framework.level_title(level) for level in allowed)}, "
            f"not at {framework.level_title(case.level)}"
        )
    return None


def issue_formal_notification(
    actor: Person,
    case: EscalationCase,
    *,
    kind: str,
    reason: str,
    password: str,
    evidence_note: str = "",
    now: datetime | None = None,
) -> Decision:
    """Issue a letter of concern or performance notice without a level change.

    Framework B, 7.2: formal notifications can be issued at levels 1 and 2 without changing
    the level. It is recorded as a decision of kind ``notice`` (from and to the same level),
    signed by the framework's decider and re-authenticated, with its letter; the unit's
    contacts are told by e-mail, which carries the letter's PDF.
    """
    now = now or utcnow()
    framework = get_framework(case.framework)
    rules = framework.formal_notifications or {}
    if not rules:
        raise ServiceError(f"The {framework.title} has no formal notifications")
    if case.level not in rules.get("allowed_at", []):
        raise ServiceError(
            f"Formal notifications can be issued at {', '.join(rules['allowed_at'])}, "
            f"not at {framework.level_title(case.level)}"
        )
    if kind not in rules.get("kinds", []):
        raise ServiceError(f"{kind!r} is not a formal notification of this framework")
    if not check_password(actor.password_hash, password):
        raise ServiceError("Your password was not correct, so nothing was signed")
    if not (reason or "").strip():
        raise ServiceError("Give the reason for the notification")
    decision = Decision(
        case_id=case.id,
        kind="notice",
        from_level=case.level,
        to_level=case.level,
        status="pending",
        signature_rule=rules["signed_by"],
        reason=reason.strip(),
        evidence=json.dumps({"note": note}) if (note := (evidence_note or "").strip()) else "",
        proposed_by_id=actor.id,
        proposed_at=now,
    )
    db.session.add(decision)
    db.session.flush()
    capacity = signing_capacity(actor, decision, now)
    if capacity is None:
        who = _who(framework.signatures[rules["signed_by"]], framework)
        raise PermissionDenied(f"A formal notification needs {who}")
    decision.signatures.append(
        _signature(
            decision,
            case,
            actor,
            capacity,
            f"Issued the {kind.replace('_', ' ')}",
            now,
            outcome="approve",
            reason=decision.reason or "",
        )
    )
    decision.status = "approved"
    decision.decided_at = now
    db.session.flush()
    letter = issue_letter(case=case, decision=decision, kind=kind, issued_by=actor, issued_at=now)
    record_event(
        "notice.issued",
        object_type="decision",
        object_id=decision.id,
        summary=f"{kind.replace('_', ' ').capitalize()} issued to {case.unit.name}: "
        f"{reason.strip()}",
        actor=actor,
    )
    title = kind.replace("_", " ")
    for person in unit_contacts(case.unit):
        queue_email(
            kind="decision",
            dedupe_key=f"decision:{decision.id}:notify:{person.id}",
            recipient=person,
            subject=f"{case.unit.name}: {title[0].upper()}{title[1:]} on "
            f"{framework.track_for(case.track).title} (level unchanged)",
            template="notice",
            link=absolute_url(f"/cases/{case.id}"),
            decision=decision,
            case=case,
            framework=framework,
            letter=letter,
            notice_title=title,
            hold_for_letter=letter,
        )
    return decision


def create_delegation(
    actor: Person,
    *,
    delegator: Person,
    delegate: Person,
    role: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str = "",
) -> Delegation:
    """Give ``delegate`` the authority to sign in ``delegator``'s role for a period."""
    from workflow_app.permissions import can_manage_people

    if not (can_manage_people(actor) or actor.id == delegator.id):
        raise PermissionDenied("Only the person delegating, or a system administrator, can do this")
    if role not in delegator.roles:
        raise ServiceError(f"{delegator.name} does not hold the role {role}")
    if delegate.id == delegator.id:
        raise ServiceError("A person cannot delegate to themselves")
    if ends_at <= starts_at:
        raise ServiceError("The delegation must end after it starts")
    delegation = Delegation(
        delegator_id=delegator.id,
        delegate_id=delegate.id,
        role=role,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip()[:300],
        created_by_id=actor.id,
    )
    db.session.add(delegation)
    db.session.flush()
    record_event(
        "delegation.created",
        object_type="delegation",
        object_id=delegation.id,
        summary=f"{delegate.name} may sign as {ROLE_TITLES.get(role, role)} for "
        f"{delegator.name} from {to_london(starts_at):%d %b %Y %H:%M} to "
        f"{to_london(ends_at):%d %b %Y %H:%M}",
        actor=actor,
    )
    return delegation
