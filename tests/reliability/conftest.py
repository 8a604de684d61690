"""Fixtures for the reliability checks that run the app as production does: gunicorn on
loopback against the test database, signed-in HTTP clients, a board with pending decisions,
and the consistency query of RELIABILITY-ANCHORS section 7.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from tests.reliability.servers import GunicornServer, TcpProxy, WebClient
from workflow_app.extensions import db

#: The iqpf Executive Team rule needs the meeting named; every signing form sends this.
MEETING = "Executive Team, item 4"


@pytest.fixture
def serve(app, database_url: str, tmp_path: Path) -> Iterator[Callable[..., GunicornServer]]:
    """Start gunicorn on the test database: ``serve(workers=2, url=None, options=...)``.

    ``--preload`` by default: the master imports the app once and forks warm workers, which
    keeps the tests quick on a small machine (create_app opens no connection, so no socket
    is shared across the fork).

    Every server started is killed as a process group afterwards, before the database is
    cleaned (this fixture depends on ``app``)."""
    started: list[GunicornServer] = []

    def start(
        workers: int = 2,
        url: str | None = None,
        options: tuple[str, ...] = ("--preload",),
        **env: str,
    ) -> GunicornServer:
        server = GunicornServer(
            url or database_url, workers=workers, log_dir=tmp_path, options=options, **env
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pg_proxy(db_kind: str, database_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """(a TCP proxy in front of the test PostgreSQL, the database URL through it)."""
    if db_kind != "postgres":
        pytest.skip("cuts the network path to PostgreSQL; SQLite has no connection to cut")
    url = sa.engine.make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port)
    try:
        yield proxy, through.render_as_string(hide_password=False)
    finally:
        proxy.close()


def signed_in(server: GunicornServer, person) -> WebClient:
    """A client of ``server`` signed in as ``person``."""
    return WebClient(server.base_url).sign_in(person.email)


def build_decision_board(create_person, create_unit, count: int) -> SimpleNamespace:
    """``count`` units, each with a pending proposal 1 -> 2a on performance (the Executive
    Team's decision: one executive signs, naming the meeting). Committed."""
    from workflow_app.models.cases import EscalationCase
    from workflow_app.services.decisions import raise_escalation

    people = SimpleNamespace(
        exec1=create_person("executive_director", name="Eve Exec"),
        exec2=create_person("executive_director", name="Ed Other"),
        ceo=create_person("ceo", name="Carys Chief"),
        lead=create_person("directorate_lead", name="Lee Lead"),
    )
    decisions = []
    for n in range(count):
        unit = create_unit(
            code=f"R{n:03d}",
            name=f"Reliability unit {n}",
            lead=people.lead,
            accountable_executive_id=people.exec1.id,
        )
        case = db.session.scalar(
            sa.select(EscalationCase).where(
                EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
            )
        )
        decision = raise_escalation(
            people.exec2,
            case,
            to_level="2a",
            reason="Referral to treatment below target for three months",
            evidence_note="RTT18 at 76%, 77%, 76%",
        )
        db.session.commit()
        decisions.append(decision.id)
    return SimpleNamespace(people=people, decision_ids=decisions)


@pytest.fixture
def decision_board(app, create_person, create_unit) -> Callable[[int], SimpleNamespace]:
    return lambda count: build_decision_board(create_person, create_unit, count)


def approve_form(token: str, reason: str = "Sustained deterioration") -> dict:
    """The sign form of an Executive Team decision, approving it."""
    return {
        "csrf_token": token,
        "outcome": "approve",
        "reason": reason,
        "meeting_reference": MEETING,
        "password": PASSWORD,
    }


def decision_state(decision_id: int) -> dict[str, int | str]:
    """Every row a decision's signing writes, counted (fresh from the database)."""
    from workflow_app.models.audit import AuditEvent
    from workflow_app.models.cases import Decision, DecisionSignature, LevelChange
    from workflow_app.models.letters import Letter
    from workflow_app.models.outbox import OutboxMessage

    db.session.rollback()
    db.session.expire_all()

    def count(model, *where) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    decision = db.session.get(Decision, decision_id)
    return {
        "status": decision.status,
        "level": decision.case.level,
        "signatures": count(DecisionSignature, DecisionSignature.decision_id == decision_id),
        "level_changes": count(LevelChange, LevelChange.decision_id == decision_id),
        "letters": count(Letter, Letter.decision_id == decision_id),
        "mails": count(OutboxMessage, OutboxMessage.dedupe_key.like(f"decision:{decision_id}:%")),
        "signed_audit": count(
            AuditEvent,
            AuditEvent.object_type == "decision",
            AuditEvent.object_id == str(decision_id),
            AuditEvent.action.like("decision.signed_%"),
        ),
        "approved_audit": count(
            AuditEvent,
            AuditEvent.object_type == "decision",
            AuditEvent.object_id == str(decision_id),
            AuditEvent.action == "decision.approved",
        ),
    }


#: A decision nobody has signed, and one whose approval is complete (1 -> 2a on iqpf: one
#: signature, its audit rows, the level change, the letter and the mails to unit contacts).
UNTOUCHED = {
    "status": "pending",
    "level": "1",
    "signatures": 0,
    "level_changes": 0,
    "letters": 0,
    "mails": 0,
    "signed_audit": 0,
    "approved_audit": 0,
}


def fully_approved(state: dict) -> bool:
    return (
        state["status"] == "approved"
        and state["level"] == "2a"
        and state["signatures"] == state["signed_audit"] == 1
        and state["level_changes"] == state["approved_audit"] == state["letters"] == 1
        and state["mails"] >= 1
    )


def consistency_problems() -> list[str]:
    """The consistency query: every decision is all-or-nothing, every case's level is the
    one its level history ends at, no e-mail or letter belongs to a decision that did not
    happen, and the audit chain verifies. Returns what is wrong (empty when clean)."""
    from workflow_app.models.audit import AuditEvent
    from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase, LevelChange
    from workflow_app.models.letters import Letter
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.services.audit import verify_chain

    db.session.rollback()
    db.session.expire_all()
    problems: list[str] = []

    def per(column, *where) -> Counter:
        rows = db.session.execute(sa.select(column, sa.func.count()).where(*where).group_by(column))
        return Counter({key: n for key, n in rows})

    changes = per(LevelChange.decision_id)
    signatures = per(DecisionSignature.decision_id)
    letters = per(Letter.decision_id)
    approved_audit = per(AuditEvent.object_id, AuditEvent.action == "decision.approved")
    signed_audit = per(AuditEvent.object_id, AuditEvent.action.like("decision.signed_%"))
    mails: Counter = Counter()
    for key in db.session.scalars(
        sa.select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.like("decision:%"))
    ):
        mails[int(key.split(":")[1])] += 1

    decisions = db.session.execute(sa.select(Decision.id, Decision.status, Decision.kind)).all()
    known = {row.id for row in decisions}
    for row in decisions:
        did, status = row.id, row.status
        if signatures[did] != signed_audit[str(did)]:
            problems.append(
                f"decision {did}: {signatures[did]} signatures, audit says {signed_audit[str(did)]}"
            )
        if row.kind in ("escalate", "de_escalate"):
            if status == "approved":
                if not (changes[did] == approved_audit[str(did)] == 1 and mails[did] >= 1):
                    problems.append(
                        f"decision {did} approved but has {changes[did]} level changes, "
                        f"{approved_audit[str(did)]} approval audit rows, {mails[did]} e-mails"
                    )
            elif changes[did] or approved_audit[str(did)] or letters[did] or mails[did]:
                problems.append(f"decision {did} is {status} but has consequences")
    for orphan in set(mails) - known:
        problems.append(f"e-mails for decision {orphan}, which does not exist")

    latest = {}
    for change in db.session.scalars(sa.select(LevelChange).order_by(LevelChange.id)):
        latest[change.case_id] = change.to_level
    for case in db.session.scalars(sa.select(EscalationCase)):
        if case.id in latest and case.level != latest[case.id]:
            problems.append(
                f"case {case.id} is at {case.level} but its history ends at {latest[case.id]}"
            )
    report = verify_chain()
    if not report.ok:
        problems.append(f"audit chain: {report.problem}")
    db.session.rollback()
    return problems
