"""The demo health board: deterministic, complete, and telling the designed story."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from config import TestConfig
from workflow_app import create_app
from workflow_app.demo import DEMO_PASSWORDS, DEMO_SEED, demo_logins, load_demo
from workflow_app.extensions import db
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
from workflow_app.models.roles import BUILT_IN_ROLES, DIRECTORATE_LEAD
from workflow_app.permissions import visible_units_filter
from workflow_app.services.audit import verify_chain
from workflow_app.services.passwords import check_password, password_problems

TODAY = date(2026, 11, 23)
LATEST = date(2026, 10, 1)
FIRST = date(2025, 5, 1)


@pytest.fixture
def demo(app):
    logins = load_demo(today=TODAY)
    db.session.commit()
    return logins


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


def test_same_seed_gives_identical_data_in_two_fresh_databases(app):
    load_demo(today=TODAY)
    db.session.commit()
    first = data_digest()

    class Fresh(TestConfig):
        SQLALCHEMY_DATABASE_URI = "sqlite://"

    other = create_app(Fresh)
    with other.app_context():
        db.create_all()
        load_demo(seed=DEMO_SEED, today=TODAY)
        assert data_digest() == first
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


def test_case_history_decisions_concerns_and_audit(demo):
    cases = {
        (unit, case.track): case
        for unit, case in db.session.execute(
            sa.select(Unit.code, EscalationCase).join(Unit, EscalationCase.unit_id == Unit.id)
        ).all()
    }
    assert len(cases) == 2 * db.session.scalar(sa.select(sa.func.count(Unit.id)))
    raised = {key: case.level for key, case in cases.items() if case.level not in {"1"}}
    assert raised == {("SURG", "performance"): "2a", ("MHLD", "performance"): "3"}

    surgery = cases[("SURG", "performance")]
    assert [(c.from_level, c.to_level) for c in surgery.level_changes] == [(None, "1"), ("1", "2a")]
    (decision,) = db.session.scalars(sa.select(Decision).where(Decision.case_id == surgery.id))
    assert decision.status == "approved"
    assert decision.kind == "escalate"
    assert decision.signature_rule == "executive_team"
    assert decision.meeting_reference == "Executive Team 14 August 2026"
    assert surgery.level_since == decision.decided_at == surgery.level_changes[-1].changed_at
    assert "Referral to treatment" in decision.reason
    assert decision.proposed_by.email == "performance.team@demo.escalate.test"
    (signature,) = decision.signatures
    assert signature.role == "executive_director"
    assert signature.person.email == "director.operations@demo.escalate.test"
    assert signature.meaning == "Approved on behalf of the Executive Team"

    mental_health = cases[("MHLD", "performance")]
    steps = [(c.from_level, c.to_level) for c in mental_health.level_changes]
    assert steps == [(None, "1"), ("1", "2a"), ("2a", "3")]
    query = sa.select(Decision).where(Decision.case_id == mental_health.id)
    decisions = db.session.scalars(query.order_by(Decision.decided_at)).all()
    assert [(d.from_level, d.to_level) for d in decisions] == [("1", "2a"), ("2a", "3")]
    assert decisions[1].signatures[0].role == "ceo"
    assert decisions[1].signatures[0].person.email == "ceo@demo.escalate.test"
    assert mental_health.level_since == decisions[1].decided_at

    concerns = db.session.scalars(sa.select(Concern)).all()
    assert 3 <= len(concerns) <= 4
    assert {(c.unit.code, c.kind, c.severity) for c in concerns} >= {
        ("MHLD", "inspection", "serious"),
        ("SURG", "never_event", "high"),
        ("UNSCH", "complaint_trend", "moderate"),
    }

    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("demo.loaded") == 1
    assert actions.count("decision.approved") == 3
    loaded = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "demo.loaded"))
    assert loaded.summary == f"Demo health board loaded (seed {DEMO_SEED})"
    assert (loaded.object_type, loaded.object_id) == ("organisation", "demo")
    assert verify_chain().ok


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
