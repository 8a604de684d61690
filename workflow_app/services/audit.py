"""Appending to and verifying the hash-chained audit trail."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.audit import GENESIS_HASH, AuditEvent
from workflow_app.models.org import Person

# Any constant works; it names the PostgreSQL advisory lock that serialises appends.
AUDIT_LOCK_KEY = 727_100_001
# session.info key: (root transaction, hash of the last event it appended).
_CHAIN_HEAD = "audit_chain_head"


@sa.event.listens_for(so.Session, "after_transaction_end")
def _forget_chain_head(session: so.Session, transaction: so.SessionTransaction) -> None:
    """The remembered head is only valid inside the transaction that wrote it: forget it when
    that transaction (or a savepoint, which may have rolled an event back) ends."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_CHAIN_HEAD, None)


def canonical_json(details: dict[str, Any]) -> str:
    """Serialise ``details`` the same way every time, so its hash is stable."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def compute_hash(event: AuditEvent) -> str:
    """Return the SHA-256 over the event's content and the previous hash."""
    material = "\x1f".join(
        [
            event.prev_hash,
            event.occurred_at.isoformat(),
            str(event.actor_id or ""),
            event.action,
            event.object_type,
            event.object_id,
            event.summary,
            event.details,
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def record_event(
    action: str,
    *,
    object_type: str,
    object_id: object,
    summary: str,
    actor: Person | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit trail in the current transaction.

    On PostgreSQL appends are serialised by a transaction-scoped advisory lock, so
    concurrent writers queue instead of forking the chain. On SQLite the database's single
    writer lock plus the unique ``prev_hash`` give the same guarantee: a writer that lost
    the race fails cleanly and changes nothing.

    :param action: a dotted verb such as ``unit.updated``.
    :param summary: one line a person can read in the audit trail.
    """
    session = db.session()  # the current Session itself, not the scoped proxy
    transaction = session.get_transaction()
    remembered = session.info.get(_CHAIN_HEAD)
    if transaction is not None and remembered is not None and remembered[0] is transaction:
        # This transaction already holds the lock (PostgreSQL) or the write lock (SQLite)
        # and wrote the head itself: nobody else can have appended since.
        head = remembered[1]
    else:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
        head = session.scalar(sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary[:500],
        details=canonical_json(details or {}),
        prev_hash=head or GENESIS_HASH,
    )
    event.hash = compute_hash(event)
    # Not flushed here: it goes with the transaction's next flush, in the order events were
    # added (the unit of work inserts a table's new rows in that order, so ids follow the
    # chain), saving a flush per event.
    session.add(event)
    session.info[_CHAIN_HEAD] = (session.get_transaction(), event.hash)
    return event


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str = ""


def verify_chain(batch_size: int = 1000) -> ChainReport:
    """Walk the audit trail in order and check every link and every row's hash."""
    expected_prev = GENESIS_HASH
    checked = 0
    query = sa.select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch_size)
    for event in db.session.scalars(query):
        if event.prev_hash != expected_prev:
            return ChainReport(
                False,
                checked,
                event.id,
                f"event {event.id} does not follow the event before it (the chain is broken: "
                "a row was removed, inserted or reordered)",
            )
        if compute_hash(event) != event.hash:
            return ChainReport(
                False,
                checked,
                event.id,
                f"event {event.id} ({event.action}) was changed after it was written "
                "(its content no longer matches its hash)",
            )
        expected_prev = event.hash
        checked += 1
    return ChainReport(True, checked)
