"""Measure charts on the unit page and the units x domains scorecard."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue


def measure_with_history(unit, domain, values):
    measure = Measure(
        unit_id=unit.id,
        domain_id=domain.id,
        code="RTT18",
        name="Referral to treatment within 18 weeks",
        target=92,
        direction="higher_is_better",
        tolerance=1,
        unit_of_measure="percent",
        kind="key_deliverable",
    )
    db.session.add(measure)
    db.session.flush()
    for i, value in enumerate(values):
        period = date(2025 + (i + 4) // 12, (i + 4) % 12 + 1, 1)  # from May 2025
        db.session.add(MonthlyActual(measure_id=measure.id, period=period, value=value))
        db.session.add(TrajectoryValue(measure_id=measure.id, period=period, value=90))
    db.session.commit()
    return measure


def test_unit_measures_page_draws_each_chart_with_a_text_alternative(
    client, login, create_person, create_unit, create_domain
):
    unit = create_unit(name="Surgery")
    measure_with_history(unit, create_domain(), [93, 94, 92, 91, 89, 88, 86, 85, 84, 83])
    login(create_person("committee_member"))
    page = client.get(f"/units/{unit.id}/measures")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 1
    assert "Referral to treatment within 18 weeks" in page.text
    assert "February 2026" in page.text  # latest month named in the text alternative
    assert "Red" in page.text  # 83% against 92% with trajectory 90%: red


def test_scorecard_shows_worst_rating_and_trend_per_domain(
    client, login, create_person, create_unit, create_domain
):
    unit = create_unit(name="Surgery")
    measure_with_history(unit, create_domain(), [93, 94, 95])
    login(create_person("ceo"))
    page = client.get("/units/scorecard")
    assert page.status_code == 200
    assert "Surgery" in page.text
    assert "1 of 1 green" in page.text
    assert "improving" in page.text


def test_a_lead_cannot_see_another_units_measures(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    create_unit(lead=lead)
    other = create_unit()
    login(lead)
    assert client.get(f"/units/{other.id}/measures").status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(Measure.id))) == 0


def test_a_corrected_value_and_the_one_it_replaced_are_both_shown(
    client, login, create_person, create_unit, create_domain
):
    analyst = create_person("performance_team", name="Ann Analyst")
    unit = create_unit()
    measure = measure_with_history(unit, create_domain(), [93, 94, 95])
    db.session.add(
        MonthlyActual(
            measure_id=measure.id,
            period=date(2025, 7, 1),
            value=91.5,
            revision=2,
            recorded_by_id=analyst.id,
        )
    )
    db.session.commit()
    login(analyst)
    page = client.get(f"/units/{unit.id}/measures")
    assert "Jul 2025: 95 corrected to 91.5 (revision 2) by Ann Analyst" in page.text
