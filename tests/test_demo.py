"""The demo health board: deterministic, complete, telling the designed story, and lived
through its history by the real review, signing and consequence services (decision 0014)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from config import TestConfig
from tests.conftest import _make_app
from workflow_app import create_app
from workflow_app.clock import LONDON, as_utc, to_london
from workflow_app.demo import DEMO_PASSWORDS, DEMO_SEED, demo_logins, load_demo
from workflow_app.extensions import db
from workflow_app.letters.store import verify_letter
from workflow_app.models import (
    AuditEvent,
    Concern,
    Decision,
    EscalationCase,
    FinancePosition,
    Measure,
    MonthlyActual,
    Person,
    TrajectoryValue,
    Unit,
)
from workflow_app.models.deadlines import Deadline, JobRun, Reminder
from workflow_app.models.letters import Letter
from workflow_app.models.outbox import OutboxMessage
from workflow_app.models.roles import BUILT_IN_ROLES, CEO, DIRECTORATE_LEAD, EXECUTIVE_DIRECTOR
from workflow_app.permissions import visible_units_filter
from workflow_app.scheduling.monthly_review import review_due_at, run_due_monthly_review
from workflow_app.services.audit import verify_chain
from workflow_app.services.deadlines import calendar_for
from workflow_app.services.decisions import signing_capacity
from workflow_app.services.passwords import check_password, password_problems

TODAY = date(2026, 11, 23)
LATEST = date(2026, 10, 1)
FIRST = date(2025, 5, 1)
# The history's present: nothing due before the start of TODAY may still be open.
TODAY_STARTS = datetime.combine(TODAY, time(0, 0), tzinfo=LONDON).astimezone(UTC)
# The replayed reviews: from the seventh month to the month before the latest.
REVIEWED = [date(2025 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(11)]


@pytest.fixture(scope="module")
def demo_file(db_kind, migrated_database, tmp_path_factory) -> str | None:
    """SQLite: the demo loaded once for the module into a file each test copies."""
    if db_kind == "postgres":
        return None
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    shutil.copyfile(migrated_database, path)
    app = _make_app(f"sqlite:///{path}")
    with app.app_context():
        load_demo(today=TODAY)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return str(path)


@pytest.fixture
def demo(request, db_kind, demo_file, tmp_path) -> Iterator[list]:
    """The demo loaded (``load_demo(today=TODAY)``), with an app context pushed."""
    if db_kind == "postgres":
        request.getfixturevalue("app")
        logins = load_demo(today=TODAY)
        db.session.commit()
        yield logins
        return
    target = tmp_path / "demo.sqlite3"
    shutil.copyfile(demo_file, target)
    app = _make_app(f"sqlite:///{target}")
    with app.app_context():
        yield demo_logins()
        db.session.remove()
        db.engine.dispose()


def person(email_local: str) -> Person:
    return db.session.scalar(
        sa.select(Person).where(Person.email == f"{email_local}@demo.escalate.test")
    )


def decisions_by_time() -> list[Decision]:
    return db.session.scalars(sa.select(Decision).order_by(Decision.decided_at, Decision.id)).all()


def level_decisions() -> list[Decision]:
    """The decisions on levels (not earned autonomy, which changes no level)."""
    return [d for d in decisions_by_time() if d.kind != "earned_autonomy"]


def case_of(unit_code: str, track: str = "performance") -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase)
        .join(Unit, EscalationCase.unit_id == Unit.id)
        .where(Unit.code == unit_code, EscalationCase.track == track)
    )


def _number(value: Decimal | None) -> str:
    return "" if value is None else f"{Decimal(value):.4f}"


def data_digest() -> str:
    """SHA-256 over every actual and finance position, independent of row ids."""
    actuals = db.session.execute(
        sa.select(Unit.code, Measure.code, MonthlyActual.period, MonthlyActual.value)
        .join(Measure, MonthlyActual.measure_id == Measure.id)
        .join(Unit, Measure.unit_id == Unit.id)
    ).all()
    finance = db.session.execute(
        sa.select(
            Unit.code,
            FinancePosition.period,
            FinancePosition.budget,
            FinancePosition.ytd_variance,
            FinancePosition.forecast_variance,
        ).join(Unit, FinancePosition.unit_id == Unit.id)
    ).all()
    lines = sorted(
        [f"A|{u}|{m}|{p.isoformat()}|{_number(v)}" for u, m, p, v in actuals]
        + [
            f"F|{u}|{p.isoformat()}|{_number(b)}|{_number(y)}|{_number(f)}"
            for u, p, b, y, f in finance
        ]
    )
    assert lines
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def latest_values() -> dict[tuple[str, str], list[tuple[date, float]]]:
    """(unit, measure) -> [(period, value)] in period order."""
    rows = db.session.execute(
        sa.select(Unit.code, Measure.code, MonthlyActual.period, MonthlyActual.value)
        .join(Measure, MonthlyActual.measure_id == Measure.id)
        .join(Unit, Measure.unit_id == Unit.id)
        .order_by(MonthlyActual.period)
    ).all()
    series: dict[tuple[str, str], list[tuple[date, float]]] = defaultdict(list)
    for unit, measure, period, value in rows:
        series[(unit, measure)].append((period, float(value)))
    return series


def history_digest() -> str:
    """SHA-256 over the decisions, signatures, letters and deadlines of the history."""
    lines = []
    for d in decisions_by_time():
        signers = [
            (s.person.email, s.role, s.meaning, s.signed_at.isoformat()) for s in d.signatures
        ]
        lines.append(
            f"D|{d.case.unit.code}|{d.case.track}|{d.from_level}|{d.to_level}|{d.status}|"
            f"{d.decided_at.isoformat()}|{d.meeting_reference}|{d.support_options}|{signers}"
        )
    for letter in db.session.scalars(sa.select(Letter)):
        lines.append(f"L|{letter.reference}|{letter.kind}|{letter.html_sha256}")
    for deadline in db.session.scalars(sa.select(Deadline)):
        lines.append(f"T|{deadline.dedupe_key}|{deadline.due_at.isoformat()}|{deadline.status}")
    assert lines
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def test_same_seed_gives_identical_data_in_two_fresh_databases(demo):
    first = data_digest()
    first_history = history_digest()

    class Fresh(TestConfig):
        SQLALCHEMY_DATABASE_URI = "sqlite://"

    other = create_app(Fresh)
    with other.app_context():
        db.create_all()
        load_demo(seed=DEMO_SEED, today=TODAY)
        assert data_digest() == first
        assert history_digest() == first_history
        db.session.rollback()
        load_demo(seed=DEMO_SEED + 1, today=TODAY)
        assert data_digest() != first
        db.session.remove()
        db.engine.dispose()


def test_exactly_two_units_breach_the_2b_threshold_in_the_latest_month(demo):
    positions = db.session.execute(
        sa.select(Unit.code, FinancePosition).join(Unit, FinancePosition.unit_id == Unit.id)
    ).all()
    latest = {code: fp for code, fp in positions if fp.period == LATEST}
    assert len(latest) == db.session.scalar(sa.select(sa.func.count(Unit.id)))
    breaches = {
        code: (fp.ytd_variance > 500_000, fp.forecast_variance > 1_000_000)
        for code, fp in latest.items()
        if fp.ytd_variance > 500_000 or fp.forecast_variance > 1_000_000
    }
    assert breaches == {"UNSCH": (True, False), "WACH": (False, True)}
    assert latest["UNSCH"].ytd_variance == Decimal("742310.00")
    assert latest["WACH"].ytd_variance < 500_000
    assert 450_000 < latest["MED"].ytd_variance <= 500_000  # the boundary case
    assert latest["FIN"].ytd_variance < 0
    assert latest["FIN"].forecast_variance < 0
    # Nobody breached before the latest month, so the breaches are news this month.
    earlier = [fp for _code, fp in positions if fp.period != LATEST]
    assert all(fp.ytd_variance <= 500_000 for fp in earlier)
    assert all(fp.forecast_variance <= 1_000_000 for fp in earlier)


def test_ytd_restarts_each_april(demo):
    """Seed 000 reports year to date on the April-March financial year."""
    for unit in db.session.scalars(sa.select(Unit)):
        rows = db.session.scalars(
            sa.select(FinancePosition)
            .where(FinancePosition.unit_id == unit.id)
            .order_by(FinancePosition.period)
        ).all()
        assert [fp.period for fp in rows][0] == FIRST
        assert len(rows) == 18
        assert all(fp.revision == 1 and fp.budget > 0 for fp in rows)
    # A YTD variance in April is one month's worth, far from a year's accumulation.
    april = db.session.scalars(
        sa.select(FinancePosition).where(FinancePosition.period == date(2026, 4, 1))
    ).all()
    assert all(abs(fp.ytd_variance) < 150_000 for fp in april)


def test_every_unit_has_measures_in_four_domains_and_18_months(demo):
    periods = {date(2025 + (4 + i) // 12, (4 + i) % 12 + 1, 1) for i in range(18)}
    assert min(periods) == FIRST
    assert max(periods) == LATEST
    units = db.session.scalars(sa.select(Unit)).all()
    assert len(units) >= 10
    kinds = {unit.kind for unit in units}
    assert {"operational_directorate", "corporate_department", "commissioned_provider"} <= kinds
    for unit in units:
        assert unit.framework == "iqpf"
        assert unit.lead is not None
        assert unit.budget_holder is not None
        assert "executive_director" in unit.accountable_executive.roles
        measures = db.session.scalars(sa.select(Measure).where(Measure.unit_id == unit.id)).all()
        assert len(measures) >= 8, unit.code
        assert len({m.domain_id for m in measures}) >= 4, unit.code
        assert any(m.kind == "key_deliverable" for m in measures), unit.code
        for measure in measures:
            trajectory = db.session.scalars(
                sa.select(TrajectoryValue.period).where(TrajectoryValue.measure_id == measure.id)
            ).all()
            assert set(trajectory) == periods, (unit.code, measure.code)
            actuals = db.session.scalars(
                sa.select(MonthlyActual).where(MonthlyActual.measure_id == measure.id)
            ).all()
            assert all(a.revision == 1 and a.source == "demo" for a in actuals)
            missing = periods - {a.period for a in actuals}
            if (unit.code, measure.code) == ("PCC", "COMM14"):
                assert missing == {date(2026, 8, 1)}  # the data-quality gap
            else:
                assert not missing, (unit.code, measure.code)


def test_one_login_per_role_and_each_can_sign_in(demo):
    assert [login.role for login in demo] == list(BUILT_IN_ROLES)
    assert demo == demo_logins()
    for login in demo:
        assert len(login.password) >= 12
        assert DEMO_PASSWORDS[login.role] == login.password
        person = db.session.scalar(sa.select(Person).where(Person.email == login.email))
        assert person is not None
        assert person.name == login.name
        assert check_password(person.password_hash, login.password)
        assert not check_password(person.password_hash, login.password + "x")
        assert person.roles == {login.role}  # the system administrator holds nothing else
        assert password_problems(login.password, email=login.email, name=login.name) == []
    demo_emails = {login.email for login in demo}
    others = db.session.scalars(sa.select(Person).where(Person.email.not_in(demo_emails))).all()
    assert len(others) >= 20
    assert all(person.password_hash is None for person in others)
    assert sum("executive_director" in p.roles for p in others) == 5


def test_the_directorate_lead_login_sees_only_surgery(demo):
    login = next(x for x in demo if x.role == DIRECTORATE_LEAD)
    person = db.session.scalar(sa.select(Person).where(Person.email == login.email))
    led = db.session.scalars(sa.select(Unit).where(Unit.lead_id == person.id)).all()
    assert [unit.code for unit in led] == ["SURG"]
    visible = db.session.scalars(sa.select(Unit.code).where(visible_units_filter(person))).all()
    assert visible == ["SURG"]


def test_key_deliverables_and_trends_tell_the_designed_story(demo):
    series = latest_values()
    kinds = dict(db.session.execute(sa.select(Measure.id, Measure.kind)).all())
    measures = {
        (unit, m.code): m
        for unit, m in db.session.execute(
            sa.select(Unit.code, Measure).join(Unit, Measure.unit_id == Unit.id)
        ).all()
    }
    assert len(kinds) == len(measures)

    def misses(measure: Measure, value: float) -> bool:
        sign = 1 if measure.direction == "higher_is_better" else -1
        return sign * (value - float(measure.target)) < 0

    # Units with two or more key deliverables missing target in each of the last 3 months.
    failing: dict[str, int] = defaultdict(int)
    for key, measure in measures.items():
        last3 = [value for _period, value in series[key][-3:]]
        if measure.kind == "key_deliverable" and all(misses(measure, v) for v in last3):
            failing[key[0]] += 1
    assert {unit for unit, count in failing.items() if count >= 2} == {"UNSCH", "SURG", "MHLD"}

    # Steady units never miss a key deliverable two months running, and never by more than
    # the tolerance (amber at worst).
    for (unit, code), measure in measures.items():
        if unit in {"UNSCH", "SURG", "MHLD"}:
            continue
        values = [value for _period, value in series[(unit, code)]]
        sign = 1 if measure.direction == "higher_is_better" else -1
        worst = min(sign * (v - float(measure.target)) for v in values)
        assert worst >= -float(measure.tolerance), (unit, code)
        if measure.kind == "key_deliverable":
            flags = [misses(measure, v) for v in values]
            assert not any(a and b for a, b in zip(flags, flags[1:], strict=False)), (unit, code)

    # Exactly one SPC trend (six or more points worsening in a row): Medicine's falls.
    trends = set()
    for key, measure in measures.items():
        points = series[key]
        sign = 1 if measure.direction == "higher_is_better" else -1
        run = 1
        for (p0, v0), (p1, v1) in zip(points, points[1:], strict=False):
            consecutive = (p1.year * 12 + p1.month) - (p0.year * 12 + p0.month) == 1
            run = run + 1 if consecutive and sign * (v1 - v0) < 0 else 1
            if run >= 6:
                trends.add(key)
    assert trends == {("MED", "FALLS")}


def test_concerns_and_audit(demo):
    concerns = db.session.scalars(sa.select(Concern)).all()
    assert 3 <= len(concerns) <= 4
    assert {(c.unit.code, c.kind, c.severity) for c in concerns} >= {
        ("MHLD", "inspection", "serious"),
        ("SURG", "never_event", "high"),
        ("UNSCH", "complaint_trend", "moderate"),
    }
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("demo.loaded") == 1
    assert actions.count("review.run") == len(REVIEWED)
    approved = len([d for d in level_decisions() if d.status == "approved"])
    assert actions.count("decision.approved") == approved
    assert actions.count("letter.issued") == approved
    # The review proposed earned autonomy for units that met every target for six months;
    # the Executive Team deferred each to the unit's six-monthly review (decision 0014).
    autonomy = [d for d in decisions_by_time() if d.kind == "earned_autonomy"]
    assert {d.case.unit.code for d in autonomy} == {"CSS", "EST", "MED", "PCC", "WOD"}
    assert {d.status for d in autonomy} == {"rejected"}
    assert all("six-monthly performance review" in d.decision_note for d in autonomy)
    assert "autonomy.granted" not in actions
    loaded = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "demo.loaded"))
    assert loaded.summary == f"Demo health board loaded (seed {DEMO_SEED})"
    assert (loaded.object_type, loaded.object_id) == ("organisation", "demo")
    assert json.loads(loaded.details)["reviews_replayed"] == [p.isoformat() for p in REVIEWED]
    assert verify_chain().ok


def test_each_month_was_reviewed_when_the_scheduler_would_and_decided_the_next_working_day(demo):
    calendar = calendar_for("iqpf")
    decisions = decisions_by_time()
    assert decisions
    assert {d.status for d in decisions} == {"approved", "rejected"}  # nothing left pending
    engine = [d for d in decisions if d.origin == "engine"]
    assert {d.period for d in engine} <= set(REVIEWED)
    assert LATEST not in {d.period for d in decisions}  # the latest month is the app's
    for d in decisions:
        decided = to_london(d.decided_at)
        if d.origin == "engine":
            # The monthly review's own due time: 08:00 on the 10th working day after month end.
            assert as_utc(d.proposed_at) == review_due_at(d.period)
            review_day = to_london(d.proposed_at).date()
            assert decided.date() == calendar.add_working_days(review_day, 1)
        assert decided.time() == time(12, 30)
        assert as_utc(d.proposed_at) < as_utc(d.decided_at) < TODAY_STARTS
        # The meeting named is the Executive Team on the day the decision was signed.
        assert d.meeting_reference == f"Executive Team {decided.day} {decided:%B %Y}"


def test_decisions_are_signed_by_the_demo_executive_or_ceo_with_reasons(demo):
    executive, ceo = person("director.operations"), person("ceo")
    for d in decisions_by_time():
        (signature,) = d.signatures
        verb = "Approved" if d.status == "approved" else "Rejected"
        assert signature.meaning == (
            f"{verb} on behalf of the Executive Team at {d.meeting_reference}"
        )
        assert signature.signed_at == d.decided_at
        if d.to_level == "3":  # Level 3: the CEO signs and chooses the support options
            assert (signature.person_id, signature.role) == (ceo.id, CEO)
            options = json.loads(d.support_options)
            assert "ceo_progress_meetings" in options
            assert options["ceo_progress_meetings"]["every"] in {"1 week", "2 weeks"}
        else:
            assert (signature.person_id, signature.role) == (executive.id, EXECUTIVE_DIRECTOR)
            assert json.loads(d.support_options or "{}") == {}
        # The signer's reason is in the audit trail: it names the unit and quotes the seed.
        (event,) = db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action
                == f"decision.signed_{'approve' if verb == 'Approved' else 'reject'}",
                AuditEvent.object_id == str(d.id),
            )
        ).all()
        assert event.actor_id == signature.person_id
        reason = json.loads(event.details)["reason"]
        assert d.case.unit.name in reason
        assert "seed 000" in reason
    mhld_3 = db.session.scalar(
        sa.select(Decision).where(Decision.case_id == case_of("MHLD").id, Decision.to_level == "3")
    )
    assert set(json.loads(mhld_3.support_options)) == {
        "independent_review",
        "ceo_progress_meetings",
    }


def test_levels_follow_the_replayed_story(demo):
    changes = {
        (case.unit.code, case.track): [(c.from_level, c.to_level) for c in case.level_changes]
        for case in db.session.scalars(sa.select(EscalationCase))
    }
    moved = {key: steps for key, steps in changes.items() if len(steps) > 1}
    escalated_once = [(None, "1"), ("1", "2a")]
    assert moved == {
        ("MHLD", "performance"): [(None, "1"), ("1", "2a"), ("2a", "3")],
        ("SURG", "performance"): [(None, "1"), ("1", "2a"), ("2a", "3")],
        ("PCC", "performance"): escalated_once,
        ("CSS", "performance"): escalated_once,
        ("UNSCH", "performance"): escalated_once,
        ("WACH", "performance"): [(None, "1"), ("1", "2a"), ("2a", "1")],  # stepped down
    }
    # Nobody breached 2b before the latest month, so the finance tracks are all still at 1.
    assert all(
        steps == [(None, "1")] for (_u, track), steps in changes.items() if track == "finance"
    )
    for case in db.session.scalars(sa.select(EscalationCase)):
        last = case.level_changes[-1]
        assert case.level == last.to_level
        assert case.level_since == last.changed_at
        if last.decision_id is not None:
            decision = db.session.get(Decision, last.decision_id)
            assert decision.status == "approved"
            assert decision.decided_at == last.changed_at
    # Mental Health went to 2a first, and to 3 when its recovery failed.
    mhld = [d for d in decisions_by_time() if d.case_id == case_of("MHLD").id]
    assert [(d.to_level, d.rule_id) for d in mhld] == [
        ("2a", "key_deliverables_failing"),
        ("3", "recovery_failing"),
    ]


def test_judgement_declines_medicine_and_steps_women_and_children_down(demo):
    medicine = level_decisions()
    medicine = [d for d in medicine if d.case_id == case_of("MED").id]
    assert [(d.status, d.period) for d in medicine] == [
        ("rejected", date(2026, 8, 1)),
        ("rejected", date(2026, 9, 1)),
    ]
    for d in medicine:
        assert d.decision_note.startswith("Rejected: The Executive Team judged the deviation")
        assert "Inpatient falls per 1,000 bed days" in d.decision_note
        assert not db.session.scalar(sa.select(Letter.id).where(Letter.decision_id == d.id))
    assert case_of("MED").level == "1"

    wach = case_of("WACH")
    step_down = db.session.scalar(
        sa.select(Decision).where(Decision.case_id == wach.id, Decision.kind == "de_escalate")
    )
    assert (step_down.origin, step_down.status) == ("manual", "approved")
    assert step_down.proposed_by.email == "eleri.vaughan@demo.escalate.test"  # its executive
    # The reason quotes the data: antenatal booking met its 80% target three months running.
    assert re.search(
        r"met its target of 80% in each of the last 3 months \(Jul [\d.]+%", step_down.reason
    )
    # Its Level 2a cadence stopped when it stepped down.
    assert not db.session.scalar(
        sa.select(sa.func.count(Deadline.id)).where(
            Deadline.case_id == wach.id, Deadline.status == "open"
        )
    )


def test_every_level_change_has_its_letter_dated_when_decided(demo):
    approved = [d for d in level_decisions() if d.status == "approved"]
    letters = db.session.scalars(sa.select(Letter).order_by(Letter.id)).all()
    assert len(letters) == len(approved) == 9
    kinds = {"2a": "escalation_2a", "3": "escalation_3", "1": "de_escalation"}
    for d in approved:
        (letter,) = [x for x in letters if x.decision_id == d.id]
        decided = to_london(d.decided_at)
        assert letter.kind == kinds[d.to_level]
        assert letter.issued_at == d.decided_at
        assert letter.issued_by_id == d.signatures[0].person_id
        assert letter.reference == f"ESC/{d.case.unit.code}/{decided:%Y-%m}/1"
        assert f"{decided.day} {decided:%B %Y}" in letter.html  # the letter's date
        assert verify_letter(letter)


def test_historic_obligations_were_met_on_time_and_none_is_overdue(demo):
    deadlines = db.session.scalars(sa.select(Deadline)).all()
    assert not [d for d in deadlines if d.status in ("open", "paused") and d.due_at < TODAY_STARTS]
    done = [d for d in deadlines if d.status == "done"]
    assert len(done) > 50
    plan_kinds = {"recovery_plan_due", "plan_review_due", "plan_resubmission_due"}
    # Met by the plan's submission or review, or by holding the meeting, in time.
    met_by_doing = plan_kinds | {"cadence:ceo_progress_meeting"}
    for deadline in done:
        if deadline.kind in met_by_doing:
            assert deadline.created_at <= deadline.completed_at <= deadline.due_at
            continue
        assert deadline.completed_at == deadline.due_at < TODAY_STARTS
        assert deadline.completed_by_id == deadline.owner_id
    notes = db.session.scalars(
        sa.select(AuditEvent.summary).where(AuditEvent.action == "deadline.completed")
    ).all()
    assert len(notes) == len(done)
    assert len([n for n in notes if "Demo history: " in n]) == len(
        [d for d in done if d.kind not in met_by_doing]
    )
    # Each escalation's recovery plan was due 10 working days after the decision.
    calendar = calendar_for("iqpf")
    for d in level_decisions():
        if d.kind == "escalate" and d.status == "approved":
            plan = db.session.scalar(
                sa.select(Deadline).where(
                    Deadline.dedupe_key == f"decision:{d.id}:recovery_plan_due"
                )
            )
            assert plan.due_at == calendar.due_at(d.decided_at, 10)
            assert plan.created_at == d.decided_at
            assert plan.status == "done"
            assert plan.completed_by_id == d.case.unit.lead_id  # the lead submitted it
    # Mental Health's independent review (a Level 3 support option) was reported.
    review = db.session.scalar(
        sa.select(Deadline).where(Deadline.kind == "support_option:independent_review")
    )
    assert (review.unit.code, review.status) == ("MHLD", "done")
    # No reminder about history is left to send.
    assert not db.session.scalar(
        sa.select(sa.func.count(Reminder.id)).where(
            Reminder.status == "pending", Reminder.send_at < TODAY_STARTS
        )
    )


def test_escalated_units_have_their_cadence_ahead(demo):
    def open_kinds(code: str) -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = defaultdict(list)
        for d in db.session.scalars(
            sa.select(Deadline)
            .where(Deadline.case_id == case_of(code).id, Deadline.status == "open")
            .order_by(Deadline.due_at)
        ):
            found[d.kind].append(d.due_at)
        return found

    for code in ("PCC", "CSS", "UNSCH"):
        assert set(open_kinds(code)) == {"cadence:executive_committee_update"}, code
    for code in ("MHLD", "SURG"):
        assert set(open_kinds(code)) == {
            "cadence:executive_committee_update",
            "cadence:committee_update",
            "cadence:ceo_progress_meeting",
        }, code
    # The progress meetings the CEO chose: weekly for Surgery, fortnightly for Mental Health,
    # every one since the Level 3 decision planned and held (no gap), the next ones open.
    for code, every in (("SURG", 7), ("MHLD", 14)):
        meetings = db.session.scalars(
            sa.select(Deadline)
            .where(
                Deadline.case_id == case_of(code).id,
                Deadline.kind == "cadence:ceo_progress_meeting",
                Deadline.status != "cancelled",
            )
            .order_by(Deadline.due_at)
        ).all()
        level_3 = to_london(case_of(code).level_since).date()
        assert to_london(meetings[0].due_at).date() == level_3 + timedelta(days=every)
        assert {
            (b.due_at - a.due_at).days for a, b in zip(meetings, meetings[1:], strict=False)
        } == {every}
        assert [m.status for m in meetings].count("open") == 2
        assert len(meetings) >= 8


def test_emails_about_history_were_sent_when_written(demo):
    messages = db.session.scalars(sa.select(OutboxMessage)).all()
    about_decisions = [m for m in messages if m.kind == "decision"]
    approved = [d for d in level_decisions() if d.status == "approved"]
    assert len({int(m.dedupe_key.split(":")[1]) for m in about_decisions}) == len(approved)
    for message in about_decisions:
        decision = db.session.get(Decision, int(message.dedupe_key.split(":")[1]))
        unit = decision.case.unit
        recipients = {unit.lead_id, unit.accountable_executive_id, unit.budget_holder_id}
        assert message.recipient_id in recipients
        assert (message.status, message.attempts) == ("sent", 1)
        assert message.sent_at == message.created_at == decision.decided_at
    # Whatever else the history wrote went out when written; only the present's mail waits.
    for message in messages:
        if message.status == "sent":
            assert message.sent_at == message.created_at < TODAY_STARTS
        else:
            assert message.created_at >= TODAY_STARTS, (message.kind, message.subject)


def test_the_latest_months_review_is_left_to_the_app(demo):
    assert not db.session.scalar(sa.select(sa.func.count(JobRun.id)))
    assert not db.session.scalar(
        sa.select(sa.func.count(Decision.id)).where(Decision.status == "pending")
    )
    result = run_due_monthly_review(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert result is not None and result.period == LATEST
    pending = db.session.scalars(sa.select(Decision).where(Decision.status == "pending")).all()
    escalations = [d for d in pending if d.kind == "escalate"]
    assert {(d.case.unit.code, d.case.track, d.to_level) for d in escalations} == {
        ("MED", "performance", "2a"),  # the third month: the Executive Team decides again
        ("UNSCH", "finance", "2b"),
        ("WACH", "finance", "2b"),
    }
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    executive, ceo = person("director.operations"), person("ceo")
    assert signing_capacity(executive, next(d for d in escalations if d.to_level == "2a"), now)
    for d in pending:  # each awaits the demo executive or the demo CEO
        assert signing_capacity(executive, d, now) or signing_capacity(ceo, d, now)


def test_refuses_to_load_twice(demo):
    with pytest.raises(RuntimeError, match="already has people"):
        load_demo(today=TODAY)


def test_defaults_to_today_in_london(app):
    """Without ``today`` the months end with last month (clock.today_london)."""
    import time_machine

    with time_machine.travel("2026-03-31 23:30:00+00:00", tick=False):  # 1 April in London
        load_demo()
    latest = db.session.scalar(sa.select(sa.func.max(FinancePosition.period)))
    assert latest == date(2026, 3, 1)


def test_escalated_units_lived_their_recovery_plans(demo):
    """Each escalation's recovery plan was written by the unit's lead before it was due,
    reviewed (one returned with a comment and resubmitted), approved, and reported on monthly
    from the data; a plan replaced by a higher level's was withdrawn (decision 0014)."""
    from workflow_app.models.plans import PlanReviewComment, RecoveryPlan
    from workflow_app.services.plans import check_smart, plan_diff, version_intact

    asked = [
        d
        for d in level_decisions()
        if d.kind == "escalate" and d.status == "approved" and d.to_level in ("2a", "3")
    ]
    plans = db.session.scalars(sa.select(RecoveryPlan).order_by(RecoveryPlan.id)).all()
    assert [p.decision_id for p in plans] == [d.id for d in asked]
    assert sorted((p.unit.code, p.status) for p in plans) == [
        ("CSS", "in_delivery"),
        ("MHLD", "failing"),  # Level 3: still missing its trajectory
        ("MHLD", "withdrawn"),  # the 2a plan, replaced at Level 3
        ("PCC", "in_delivery"),
        ("SURG", "in_delivery"),
        ("SURG", "withdrawn"),
        ("UNSCH", "in_delivery"),
        ("WACH", "completed"),  # delivered; stepped down
    ]
    for plan, decision in zip(plans, asked, strict=True):
        due = db.session.scalar(
            sa.select(Deadline).where(
                Deadline.dedupe_key == f"decision:{decision.id}:recovery_plan_due"
            )
        )
        first = plan.versions[0]
        assert first.submitted_by_id == plan.unit.lead_id
        assert as_utc(decision.decided_at) < as_utc(first.submitted_at) < as_utc(due.due_at)
        assert all(version_intact(v) for v in plan.versions)
        assert plan.approved_at is not None and plan.approved_by_id != plan.unit.lead_id
        assert plan.approved_by_id == (
            plan.unit.accountable_executive_id
            if decision.to_level == "3"
            else person("performance.team").id
        )
        assert plan.summary and plan.risk_assessment and plan.support_requested
        assert plan.risk_level == ("high" if decision.to_level == "3" else "moderate")
        evidence = {
            m["code"]
            for s in json.loads(decision.evidence)["signals"]
            for m in s.get("measures", [])
        }
        assert 2 <= len(plan.actions) <= 3
        planned = {t.measure.code for t in plan.trajectory}
        assert planned == evidence
        for action in plan.actions:
            assert action.measure.code in evidence
            assert action.owner_id in {
                plan.unit.lead_id,
                plan.unit.budget_holder_id,
                plan.unit.accountable_executive_id,
            }
            assert action.domain_id == action.measure.domain_id
            assert action.deliverable and action.milestones and action.resources
            assert action.due_on > to_london(first.submitted_at).date()
        # The plan as submitted passed the SMART check on the day.
        assert not check_smart(plan, today=to_london(plan.versions[-1].submitted_at).date())
        # Approved in the month of the decision (as the replay assumed), except the returned one.
        approved = to_london(plan.approved_at)
        decided = to_london(decision.decided_at)
        if plan.unit.code != "WACH":
            assert (approved.year, approved.month) == (decided.year, decided.month)

    # Women & Children's plan was returned with a comment on an action and resubmitted.
    (wach,) = [p for p in plans if p.unit.code == "WACH"]
    v1, v2 = wach.versions
    assert (v1.outcome, v2.outcome) == ("returned", "approved")
    (comment,) = db.session.scalars(
        sa.select(PlanReviewComment).where(PlanReviewComment.version_id == v1.id)
    ).all()
    assert comment.action_id == wach.actions[-1].id and "how many" in comment.comment
    diff = plan_diff(v1, v2)
    (changed,) = [a for a in diff.actions if a.change == "changed"]
    assert {f.field for f in changed.fields} == {"description", "expected_effect"}
    resubmit = db.session.scalar(
        sa.select(Deadline).where(Deadline.dedupe_key == f"plan:{wach.id}:v1:resubmit")
    )
    assert resubmit.status == "done" and resubmit.completed_at == v2.submitted_at

    # Monthly updates: every action of a plan in delivery reported each month after approval
    # to the latest month, from the data, while the plan was open.
    for plan in plans:
        first_month = to_london(plan.approved_at).date().replace(day=1)
        for action in plan.actions:
            months = [u.period for u in action.updates]
            assert months == sorted(months)
            if plan.status in ("in_delivery", "failing"):
                expected = [m for m in REVIEWED + [LATEST] if m > first_month]
                assert months == expected, (plan.unit.code, months)
            for update in action.updates:
                assert update.status in ("on_track", "at_risk", "off_track")
                assert action.measure.name in update.narrative
                assert update.updated_by_id == action.owner_id
                assert to_london(update.updated_at).date().replace(day=1) == update.period
    # Women & Children delivered every action before it stepped down; Mental Health's Level 3
    # plan is off track and failing.
    assert all(a.delivered_on and a.delivered_on <= date(2026, 9, 30) for a in wach.actions)
    (mhld,) = [p for p in plans if p.unit.code == "MHLD" and p.status == "failing"]
    assert {u.status for a in mhld.actions for u in a.updates if u.period == LATEST} == {
        "off_track"
    }


def test_past_ceo_progress_meetings_were_held_with_minutes_not_cancelled(demo):
    from workflow_app.models.meetings import Meeting

    meetings = db.session.scalars(sa.select(Meeting).where(Meeting.kind == "ceo_progress")).all()
    past = [m for m in meetings if m.deadline.due_at < TODAY_STARTS]
    assert len(past) > 10
    assert {m.status for m in past} == {"held"}
    for meeting in past:
        assert meeting.minutes and meeting.decisions_text
        assert meeting.starts_at < meeting.minutes_recorded_at <= meeting.deadline.completed_at
        assert meeting.deadline.status == "done"
    assert {m.status for m in meetings if m not in past} <= {"requested", "scheduled"}
