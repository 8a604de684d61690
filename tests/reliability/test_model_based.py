"""Check 25 of RELIABILITY-ANCHORS section 7: random action sequences over the service layer.

A hypothesis ``RuleBasedStateMachine`` drives one IQPF unit (a performance and a finance
case) through the services as people would: propose any level (legal or not), sign with the
right or a wrong password, approve or reject, step down, start, write, submit, review,
return and approve the recovery plan, move the clock on and run the scheduler's sweep (which
also hands the outbox to a real SMTP server). Its model knows only the framework file: the
level each case should be at. After every step the invariants are checked against the
database:

* each case's level is one of its track's levels, and is the level the model expects (so no
  illegal transition was accepted and nothing moved a level but an approved decision);
* every level change is a transition the framework declares, made by an approved decision,
  and has exactly one ``decision.approved`` audit row; there is no other such row;
* the audit chain verifies;
* the outbox holds one "decision" e-mail per level change and unit contact, and the SMTP
  server received exactly the messages the outbox says were sent.

Every refused action must leave the database as it was. CI runs a bounded profile
(``HYPOTHESIS_PROFILE=ci``: 25 examples of up to 15 steps); ``HYPOTHESIS_PROFILE=full`` runs
500 examples of up to 30 steps.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import PASSWORD, _truncate_all
from workflow_app.clock import to_london, utcnow
from workflow_app.extensions import db

FULL = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "full"
MACHINE_SETTINGS = settings(
    max_examples=500 if FULL else 25,
    stateful_step_count=30 if FULL else 15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=not FULL,  # CI replays the same sequences; the full run explores
    # No "explain" phase: tracing every line of the services makes a failure take minutes.
    phases=(Phase.explicit, Phase.reuse, Phase.generate)
    + (() if os.environ.get("MODEL_NO_SHRINK") else (Phase.shrink,)),
)
#: Monday 23 November 2026, 10:00 UTC, as the tests' clock; the model moves it on.
START = "2026-11-23 10:00:00+00:00"
MEETING = "Executive Team, item 4"
FRAMEWORK = "iqpf"
PLAN_MOVES = ("submit", "start_review", "return_for_changes", "approve")
#: The services return or approve a plan straight from "submitted" by recording the start
#: of the review first (plans._begin_review_if_needed): two events in one transaction.
THROUGH_REVIEW = ("return_for_changes", "approve")


def _smart_data(world: dict, today: date) -> dict:
    """Plan data that passes the SMART check on ``today`` (actions due in two months)."""
    month = today.replace(day=1)
    return {
        "summary": "Referral to treatment has fallen below 80% for three months.",
        "risk_assessment": "Long waits raise the risk of harm; clinical review of the list.",
        "risk_level": "high",
        "support_requested": "Two locum consultants for six months.",
        "headlines": "",
        "narrative": "",
        "queries": "",
        "actions": [
            {
                "id": None,
                "description": "Run weekend theatre lists for orthopaedics",
                "measure_id": world["measure_id"],
                "expected_effect": "from 76% to 85%",
                "owner_id": world["lead_id"],
                "resources": "Theatre staff overtime",
                "domain_id": world["domain_id"],
                "deliverable": "Orthopaedic backlog cleared",
                "due_on": today + timedelta(days=60),
                "milestones": "",
            }
        ],
        "trajectory": [
            {"measure_id": world["measure_id"], "period": month, "planned_value": Decimal(80)}
        ],
    }


def test_random_action_sequences_keep_the_invariants(
    make_app, database_url, db_kind, migrated_database, smtp_server
):
    """Check 25: invariants hold after every step of random service-level sequences."""
    from state_machines import get_framework
    from state_machines.plan_review import EVENTS as PLAN_EVENTS
    from workflow_app.models.audit import AuditEvent
    from workflow_app.models.cases import Decision, EscalationCase, LevelChange
    from workflow_app.models.measures import Measure
    from workflow_app.models.org import Domain, Person, RoleGrant, Unit
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.models.plans import RecoveryPlan
    from workflow_app.scheduling.jobs import sweep
    from workflow_app.services import plans
    from workflow_app.services.audit import verify_chain
    from workflow_app.services.decisions import decide_proposal, raise_escalation
    from workflow_app.services.errors import ServiceError
    from workflow_app.services.org import open_cases_for_unit, unit_contacts
    from workflow_app.services.passwords import hash_password

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    seen: Counter[str] = Counter()  # what the sequences did, so a vacuous run fails
    framework = get_framework(FRAMEWORK)
    with app.app_context():
        hashed = hash_password(PASSWORD)
    tracks = [name for name, track in framework.tracks.items() if not track.per_measure]
    all_levels = sorted({level for t in tracks for level in framework.track_for(t).levels})

    def fresh_database() -> None:
        """Each example starts from an empty migrated database."""
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if db_kind == "postgres":
            _truncate_all(app)
        else:
            shutil.copyfile(migrated_database, database_url.removeprefix("sqlite:///"))
        smtp_server.handler.messages.clear()

    def snapshot() -> tuple:
        """What a refused action must not change."""
        db.session.rollback()
        return (
            tuple(db.session.execute(sa.select(EscalationCase.id, EscalationCase.level)).all()),
            db.session.scalar(sa.select(sa.func.count(AuditEvent.id))),
            tuple(db.session.execute(sa.select(Decision.id, Decision.status)).all()),
            tuple(db.session.execute(sa.select(RecoveryPlan.id, RecoveryPlan.status)).all()),
        )

    class ServiceLifecycle(RuleBasedStateMachine):
        """The model: each case's expected level, and the decisions and plan ids it made."""

        def __init__(self) -> None:
            super().__init__()
            fresh_database()
            self.traveller = time_machine.travel(START, tick=False)
            self.clock = self.traveller.start()
            self.context = app.app_context()
            self.context.push()
            self.level: dict[int, str] = {}
            self.decisions: list[int] = []
            self.plan_id: int | None = None

        def teardown(self) -> None:
            db.session.remove()
            self.context.pop()
            self.traveller.stop()

        # --- the world ----------------------------------------------------------------------

        @initialize(performance_at_2a=st.booleans())
        def build_world(self, performance_at_2a: bool) -> None:
            def person(name: str, role: str) -> Person:
                p = Person(name=name, email=f"{name.split()[0].lower()}@example.nhs.uk")
                p.password_hash = hashed
                p.grants = [RoleGrant(role=role)]
                db.session.add(p)
                return p

            ceo = person("Cara Chief", "ceo")
            executive = person("Eve Exec", "executive_director")
            reviewer = person("Pat Performance", "performance_team")
            lead = person("Lee Lead", "directorate_lead")
            domain = Domain(code="access_activity", name="Access & Activity")
            db.session.add(domain)
            db.session.flush()
            unit = Unit(
                code="SURG",
                name="Surgery",
                kind="operational_directorate",
                framework=FRAMEWORK,
                lead_id=lead.id,
                accountable_executive_id=executive.id,
                budget_holder_id=lead.id,
            )
            db.session.add(unit)
            db.session.flush()
            cases = open_cases_for_unit(unit)
            measure = Measure(
                unit_id=unit.id,
                domain_id=domain.id,
                code="RTT18",
                name="Referral to treatment in 18 weeks",
                kind="national_target",
                target=Decimal(92),
                direction="higher_is_better",
                unit_of_measure="percent",
            )
            db.session.add(measure)
            db.session.commit()
            self.world = {
                "ceo_id": ceo.id,
                "reviewer_id": reviewer.id,
                "lead_id": lead.id,
                "unit_id": unit.id,
                "measure_id": measure.id,
                "domain_id": domain.id,
            }
            self.cases = {case.track: case.id for case in cases}
            for case in cases:
                self.level[case.id] = framework.track_for(case.track).levels[0]
            if performance_at_2a:  # half the sequences start with a plan due (short paths)
                self.propose("performance", "2a")
                decision = db.session.get(Decision, self.decisions[-1])
                self._sign(decision, "approve", PASSWORD)
                db.session.commit()
                self.level[self.cases["performance"]] = "2a"
                seen["signed approve 1 -> 2a (first step)"] += 1

        def person(self, key: str) -> Person:
            return db.session.get(Person, self.world[key])

        def refused(self, action, before: tuple) -> None:
            """``action`` must raise a ServiceError and change nothing."""
            try:
                action()
            except ServiceError:
                db.session.rollback()
            else:
                db.session.rollback()
                raise AssertionError("an action the model forbids was accepted")
            assert snapshot() == before, "a refused action changed the database"

        # --- escalation ---------------------------------------------------------------------

        @rule(track=st.sampled_from(["performance", "finance"]), to=st.sampled_from(all_levels))
        def propose(self, track: str, to: str) -> None:
            case = db.session.get(EscalationCase, self.cases[track])
            legal = framework.transition(track, self.level[case.id], to) is not None
            if not legal:
                self.refused(
                    lambda: raise_escalation(
                        self.person("ceo_id"), case, to_level=to, reason="r", evidence_note="e"
                    ),
                    snapshot(),
                )
                return
            decision = raise_escalation(
                self.person("ceo_id"),
                case,
                to_level=to,
                reason="Below target for three months",
                evidence_note="RTT18 at 76%, 77%, 76%",
            )
            db.session.commit()
            self.decisions.append(decision.id)

        def _pending(self) -> list[int]:
            return [d for d in self.decisions if db.session.get(Decision, d).status == "pending"]

        @precondition(lambda self: self.decisions)
        @rule(data=st.data(), outcome=st.sampled_from(["approve", "reject"]))
        def sign(self, data, outcome: str) -> None:
            """Sign any decision the model made: pending, decided or overtaken."""
            self._sign_one(data.draw(st.sampled_from(self.decisions), label="decision"), outcome)

        @precondition(lambda self: self._pending())
        @rule(data=st.data(), outcome=st.sampled_from(["approve", "approve", "reject"]))
        def sign_a_pending_one(self, data, outcome: str) -> None:
            """Sign a decision still pending (so sequences get far)."""
            self._sign_one(data.draw(st.sampled_from(self._pending()), label="decision"), outcome)

        def _sign_one(self, decision_id: int, outcome: str) -> None:
            decision = db.session.get(Decision, decision_id)
            case_id = decision.case_id
            expected_ok = decision.status == "pending" and (
                decision.from_level == self.level[case_id]
            )
            if not expected_ok:  # decided, superseded, or the case has moved since
                self.refused(lambda: self._sign(decision, outcome, PASSWORD), snapshot())
                return
            self._sign(decision, outcome, PASSWORD)
            db.session.commit()
            seen[f"signed {outcome} {decision.from_level} -> {decision.to_level}"] += 1
            if outcome == "approve":
                self.level[case_id] = decision.to_level

        @precondition(lambda self: self.decisions)
        @rule(data=st.data())
        def sign_with_a_wrong_password(self, data) -> None:
            decision = db.session.get(Decision, data.draw(st.sampled_from(self.decisions)))
            self.refused(lambda: self._sign(decision, "approve", "not the password"), snapshot())

        def _sign(self, decision, outcome: str, password: str):
            return decide_proposal(
                self.person("ceo_id"),
                decision,
                outcome=outcome,
                reason="Agreed at the Executive Team",
                password=password,
                meeting_reference=MEETING,
            )

        # --- the recovery plan --------------------------------------------------------------

        def _plan(self) -> RecoveryPlan | None:
            return db.session.get(RecoveryPlan, self.plan_id) if self.plan_id else None

        def _no_open_plan(self) -> bool:
            plan = self._plan()
            return plan is None or plan.status in ("completed", "withdrawn")

        @precondition(lambda self: self._no_open_plan())
        @rule()
        def start_plan(self) -> None:
            case = db.session.get(EscalationCase, self.cases["performance"])
            due = plans.live_plan_due_deadline(case)
            open_plan = plans.open_plan_for_case(case)
            if due is None and open_plan is None:
                self.refused(lambda: plans.start_plan(self.person("lead_id"), case), snapshot())
                return
            self.plan_id = plans.start_plan(self.person("lead_id"), case).id
            db.session.commit()
            seen["plan started"] += 1

        @precondition(lambda self: self.plan_id)
        @rule(event=st.sampled_from(PLAN_MOVES))
        def move_plan_any_way(self, event: str) -> None:
            """Any review event, legal or not from the plan's status."""
            self._move_plan(event)

        @precondition(lambda self: self.plan_id)
        @rule(data=st.data())
        def move_plan_on(self, data) -> None:
            """A review event the cycle allows from the plan's status (so sequences get far)."""
            status = self._plan().status
            allowed = [e for e in PLAN_MOVES if status in self._sources(e)]
            if allowed:
                self._move_plan(data.draw(st.sampled_from(allowed), label="event"))

        @staticmethod
        def _sources(event: str) -> tuple[str, ...]:
            sources = PLAN_EVENTS[event][0]
            return sources + ("submitted",) if event in THROUGH_REVIEW else sources

        def _move_plan(self, event: str) -> None:
            plan = self._plan()
            status = plan.status
            destination = PLAN_EVENTS[event][1]
            if status not in self._sources(event):
                self.refused(lambda: self._fire(plan, event), snapshot())
                seen["plan move refused"] += 1
                return
            self._fire(plan, event)
            db.session.commit()
            seen[f"plan {event}"] += 1
            plan = self._plan()
            # approving goes on into delivery in the same transaction
            assert plan.status == ("in_delivery" if event == "approve" else destination)

        def _fire(self, plan: RecoveryPlan, event: str) -> None:
            reviewer, lead = self.person("reviewer_id"), self.person("lead_id")
            if event == "submit":
                if plan.status in ("draft", "returned"):
                    today = to_london(utcnow()).date()
                    plans.save_draft(lead, plan, _smart_data(self.world, today), plan.lock_version)
                plans.submit(lead, plan)
            elif event == "start_review":
                plans.start_review(reviewer, plan)
            elif event == "return_for_changes":
                plans.return_for_changes(reviewer, plan, "The action needs dates.")
            else:
                plans.approve(reviewer, plan, "Agreed")

        # --- time and the scheduler ---------------------------------------------------------

        @rule(days=st.integers(min_value=1, max_value=15))
        def advance_the_clock(self, days: int) -> None:
            self.clock.shift(timedelta(days=days))

        @rule()
        def run_the_sweep(self) -> None:
            db.session.rollback()
            report = sweep(utcnow())
            db.session.rollback()
            assert report.errors == [], f"sweep steps failed: {report.errors}"
            seen["sweep"] += 1

        # --- invariants ---------------------------------------------------------------------

        @invariant()
        def levels_are_the_frameworks_and_the_models(self) -> None:
            db.session.rollback()
            for case in db.session.scalars(sa.select(EscalationCase)):
                assert case.level in framework.track_for(case.track).levels
                assert case.level == self.level[case.id], (
                    f"{case.track} is at {case.level}, the model expects {self.level[case.id]}"
                )

        @invariant()
        def every_level_change_is_declared_and_audited_once(self) -> None:
            changes = db.session.scalars(sa.select(LevelChange).order_by(LevelChange.id)).all()
            approved_events = db.session.execute(
                sa.select(AuditEvent.object_id, sa.func.count(AuditEvent.id))
                .where(AuditEvent.action == "decision.approved")
                .group_by(AuditEvent.object_id)
            ).all()
            audited = dict(approved_events)
            openings = [c for c in changes if c.decision_id is None]
            changes = [c for c in changes if c.decision_id is not None]
            for opening in openings:  # a case opened at its track's lowest level
                case = db.session.get(EscalationCase, opening.case_id)
                assert opening.from_level is None
                assert opening.to_level == framework.track_for(case.track).levels[0]
            assert len(audited) == len(changes)
            for change in changes:
                case = db.session.get(EscalationCase, change.case_id)
                assert framework.transition(case.track, change.from_level, change.to_level)
                assert db.session.get(Decision, change.decision_id).status == "approved"
                assert audited.get(str(change.decision_id)) == 1
            for case_id, level in self.level.items():
                last = next((c for c in reversed(changes) if c.case_id == case_id), None)
                if last is not None:
                    assert last.to_level == level

        @invariant()
        def the_audit_chain_verifies(self) -> None:
            report = verify_chain()
            assert report.ok, report.problem

        @invariant()
        def the_outbox_matches_the_decisions_and_the_mail_sent(self) -> None:
            if not self.level:
                return
            unit = db.session.get(Unit, self.world["unit_id"])
            changes = db.session.scalar(
                sa.select(sa.func.count(LevelChange.id)).where(LevelChange.decision_id.is_not(None))
            )
            decision_mail = db.session.scalar(
                sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.kind == "decision")
            )
            assert decision_mail == changes * len(unit_contacts(unit))
            sent = db.session.scalar(
                sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.status == "sent")
            )
            assert len(smtp_server.handler.messages) == sent
            db.session.rollback()

    run_state_machine_as_test(ServiceLifecycle, settings=MACHINE_SETTINGS)
    print("model-based sequences:", dict(sorted(seen.items())))
    # The sequences reached the paths the invariants are about.
    assert any(k.startswith("signed approve") for k in seen), seen
    assert seen["plan submit"] and seen["sweep"], seen
