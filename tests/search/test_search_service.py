"""The search service on real data: free text, LIKE wildcards, filters, sorting, pages and
who sees what (a directorate lead only ever gets rows of their own units)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.plans import RecoveryPlan
from workflow_app.services.search import PAGE_SIZE, Criteria, count, like_pattern, search


def codes(results) -> list[str]:
    return [hit.obj.code for hit in results.hits]


@pytest.fixture
def ceo(create_person):
    return create_person("ceo", name="Chief Executive")


def case_of(unit, track="performance") -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def add_measure(unit, domain, code, name, target=92, **values) -> Measure:
    measure = Measure(
        unit_id=unit.id,
        domain_id=domain.id,
        code=code,
        name=name,
        target=Decimal(target),
        direction=values.pop("direction", "higher_is_better"),
        unit_of_measure="percent",
        **values,
    )
    db.session.add(measure)
    db.session.commit()
    return measure


def add_plan(unit, title, status="draft", updated_at=None, track="performance") -> RecoveryPlan:
    plan = RecoveryPlan(
        case_id=case_of(unit, track).id,
        unit_id=unit.id,
        title=title,
        status=status,
        updated_at=updated_at or datetime(2026, 11, 1, 12, tzinfo=UTC),
    )
    db.session.add(plan)
    db.session.commit()
    return plan


def test_free_text_ignores_case_and_word_order_on_every_database(ceo, create_unit):
    create_unit(code="SURG", name="Surgery and Theatres")
    create_unit(code="MED", name="Medicine")
    create_unit(code="ESTH", name="Équipe Esthétique")

    assert codes(search(ceo, Criteria(q="surgery"))) == ["SURG"]
    assert codes(search(ceo, Criteria(q="THEATRES surg"))) == ["SURG"]
    assert codes(search(ceo, Criteria(q="med"))) == ["MED"]
    # Beyond ASCII: SQLite's own lower() would miss these; both databases must find them.
    assert codes(search(ceo, Criteria(q="équipe"))) == ["ESTH"]
    assert codes(search(ceo, Criteria(q="ÉQUIPE ESTHÉTIQUE"))) == ["ESTH"]
    assert codes(search(ceo, Criteria(q="surgery medicine"))) == []


def test_like_wildcards_typed_by_a_person_match_only_themselves(ceo, create_unit):
    create_unit(code="PCT", name="100% Access")
    create_unit(code="UND", name="Ward_7")
    create_unit(code="BSL", name="Back\\slash team")
    create_unit(code="PLAIN", name="Ward 77 Access")

    assert codes(search(ceo, Criteria(q="%"))) == ["PCT"]
    assert codes(search(ceo, Criteria(q="0% a"))) == ["PCT"]
    assert codes(search(ceo, Criteria(q="_"))) == ["UND"]
    assert codes(search(ceo, Criteria(q="ward_"))) == ["UND"]
    assert codes(search(ceo, Criteria(q="\\"))) == ["BSL"]
    assert like_pattern("a%b_c\\") == "%a\\%b\\_c\\\\%"


def test_a_lead_only_ever_finds_their_own_units_rows(
    ceo, create_person, create_unit, create_domain
):
    lead_a = create_person("directorate_lead", name="Lead A")
    unit_a = create_unit(code="SURGA", name="Surgery A", lead=lead_a)
    unit_b = create_unit(code="SURGB", name="Surgery B")
    domain = create_domain()
    for unit in (unit_a, unit_b):
        add_measure(unit, domain, "RTT18", "Referral to treatment")
        add_plan(unit, f"Surgery recovery plan {unit.code}")

    for kind in ("units", "cases", "measures", "plans"):
        mine = search(lead_a, Criteria(kind=kind, q="surgery"), page=None)
        assert mine.hits, kind
        assert {_unit(hit.obj).code for hit in mine.hits} == {"SURGA"}, kind
        assert count(lead_a, Criteria(kind=kind, q="surgery")) == mine.total
        everyone = search(ceo, Criteria(kind=kind, q="surgery"), page=None)
        assert {_unit(hit.obj).code for hit in everyone.hits} == {"SURGA", "SURGB"}, kind


def _unit(obj):
    return obj if obj.__class__.__name__ == "Unit" else obj.unit


def test_unit_filters_kind_framework_level_domain_and_inactive(ceo, create_unit, create_domain):
    create_unit(code="OPS", name="Operations", kind="operational_directorate")
    corp = create_unit(code="CORP", name="Corporate", kind="corporate_department")
    create_unit(code="WAL", name="Welsh board", framework="nhs_wales", kind="organisation")
    add_measure(corp, create_domain("workforce", "Workforce & Culture"), "SICK", "Sickness")
    case = case_of(corp, "finance")
    case.level = "2b"
    db.session.commit()

    assert codes(search(ceo, Criteria(unit_kind="corporate_department"))) == ["CORP"]
    assert codes(search(ceo, Criteria(framework="nhs_wales"))) == ["WAL"]
    assert codes(search(ceo, Criteria(level="2b"))) == ["CORP"]
    assert codes(search(ceo, Criteria(domain="workforce"))) == ["CORP"]
    # A filter that does not apply to units (plan status) is simply not used.
    assert len(search(ceo, Criteria(plan_status="approved")).hits) == 3
    # Inactive units are left out unless asked for.
    corp.is_active = False
    db.session.commit()
    assert codes(search(ceo, Criteria(q="corp"))) == []
    assert codes(search(ceo, Criteria(q="corp", inactive=True))) == ["CORP"]


def test_cases_by_track_level_and_date_in_london_time(ceo, create_unit):
    surg = create_unit(code="SURG", name="Surgery")
    create_unit(code="MED", name="Medicine")
    case = case_of(surg, "performance")
    case.level = "2a"
    # 23:30 UTC on 31 March is 00:30 on 1 April in London (BST).
    case.level_since = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    db.session.commit()

    found = search(ceo, Criteria(kind="cases", level="2a"))
    assert [(h.obj.unit.code, h.obj.track, h.extra["level"]) for h in found.hits] == [
        ("SURG", "performance", "Level 2a")
    ]
    assert search(ceo, Criteria(kind="cases", track="finance")).total == 2
    april = Criteria(kind="cases", level="2a", date_from=date(2026, 4, 1), date_to=date(2026, 4, 1))
    assert search(ceo, april).total == 1
    march = Criteria(kind="cases", level="2a", date_to=date(2026, 3, 31))
    assert search(ceo, march).total == 0

    # "Highest level first" follows each track's ladder, not the spelling of level ids.
    tiers = create_unit(code="TIER", name="Tiers", framework="system_tiers")
    db.session.add_all(
        EscalationCase(unit_id=tiers.id, framework="system_tiers", track=track, level=level)
        for track, level in (("measure:A", "monitor"), ("measure:B", "icb"))
    )
    db.session.commit()
    highest = search(ceo, Criteria(kind="cases", sort="-level")).hits
    # icb is the top tier; 2a and monitor are both one step up (then by unit code).
    assert [h.obj.level for h in highest[:3]] == ["icb", "2a", "monitor"]
    assert search(ceo, Criteria(kind="cases", track="measure")).total == 2


def test_measures_by_text_domain_and_latest_months_rag(ceo, create_unit, create_domain):
    unit = create_unit(code="SURG", name="Surgery")
    access = create_domain()
    quality = create_domain("quality", "Quality, Safety & Patient Experience")
    red = add_measure(unit, access, "RTT18", "Referral to treatment", target=92, tolerance=1)
    amber = add_measure(unit, access, "DM01", "Diagnostics", target=99, tolerance=1)
    green = add_measure(unit, quality, "HCAI", "Infections", target=5, direction="lower_is_better")
    add_measure(unit, quality, "FFT", "Friends and family")  # no data
    oct_, nov = date(2026, 10, 1), date(2026, 11, 1)
    db.session.add_all(
        [
            MonthlyActual(measure_id=red.id, period=oct_, value=Decimal(95)),  # older, green
            MonthlyActual(measure_id=red.id, period=nov, value=Decimal(93)),
            MonthlyActual(measure_id=red.id, period=nov, value=Decimal(80), revision=2),
            MonthlyActual(measure_id=amber.id, period=nov, value=Decimal("98.5")),
            MonthlyActual(measure_id=green.id, period=nov, value=Decimal(3)),
            TrajectoryValue(measure_id=red.id, period=nov, value=Decimal(90)),
        ]
    )
    db.session.commit()

    def found(**values):
        return [hit.obj.code for hit in search(ceo, Criteria(kind="measures", **values)).hits]

    assert found(rag="red") == ["RTT18"]  # the latest revision (80) counts, not 93
    assert found(rag="amber") == ["DM01"]  # missed, but within tolerance
    assert found(rag="green") == ["HCAI"]
    assert found(rag="no_data") == ["FFT"]
    assert sorted(found(rag="exception")) == ["DM01", "RTT18"]
    assert found(domain="quality", sort="code") == ["FFT", "HCAI"]
    assert found(q="referral") == ["RTT18"]
    hit = search(ceo, Criteria(kind="measures", q="rtt18")).hits[0]
    assert (hit.extra["month"], hit.extra["actual"], hit.extra["rag"]) == (nov, Decimal(80), "Red")


def test_plans_by_text_status_and_last_change(ceo, create_unit):
    surg = create_unit(code="SURG", name="Surgery")
    add_plan(  # on the finance track: a case has one open plan at a time
        surg,
        "Theatre recovery",
        status="approved",
        updated_at=datetime(2026, 9, 1, tzinfo=UTC),
        track="finance",
    )
    add_plan(surg, "Theatre staffing", status="draft", updated_at=datetime(2026, 11, 2, tzinfo=UTC))

    def titles(**values):
        return [h.obj.title for h in search(ceo, Criteria(kind="plans", **values)).hits]

    assert titles(q="theatre") == ["Theatre staffing", "Theatre recovery"]  # newest first
    assert titles(q="theatre", sort="updated") == ["Theatre recovery", "Theatre staffing"]
    assert titles(plan_status="approved") == ["Theatre recovery"]
    assert titles(date_from=date(2026, 10, 1)) == ["Theatre staffing"]
    assert titles(q="surg", date_to=date(2026, 9, 30)) == ["Theatre recovery"]


def test_pages_hold_every_row_once_and_a_page_past_the_end_shows_the_last(ceo, create_unit):
    for n in range(PAGE_SIZE + 5):
        create_unit(code=f"W{n:02}", name=f"Ward {n:02}")

    first = search(ceo, Criteria(q="ward"), page=1)
    second = search(ceo, Criteria(q="ward"), page=2)
    assert (first.total, first.pages, len(first.hits), len(second.hits)) == (30, 2, 25, 5)
    assert (second.first, second.last) == (26, 30)
    assert sorted(codes(first) + codes(second)) == [f"W{n:02}" for n in range(30)]
    assert codes(search(ceo, Criteria(q="ward"), page=99)) == codes(second)
    assert len(search(ceo, Criteria(q="ward"), page=None).hits) == 30
    by_name = codes(search(ceo, Criteria(q="ward", sort="-name"), page=1))
    assert by_name[0] == "W29"
