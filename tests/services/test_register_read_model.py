"""The register's read model (decision 0037) says what the full register says: the same
counts by level, the same open escalations in the same order, the same rows and since."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase, LevelChange
from workflow_app.services.dashboard import level_counts_of, units_by_level
from workflow_app.services.register import (
    open_escalations_page,
    register_for,
    register_rows_page,
    register_summary,
    tracks_in,
)


def cases_of(unit) -> dict[str, EscalationCase]:
    cases = db.session.scalars(sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id))
    return {case.track: case for case in cases}


def mixed_world(create_person, create_unit):
    """IQPF and NHS Wales units at various levels, an inactive unit, a unit that changed
    framework (its old cases stay behind), a lead with two units."""
    lead = create_person("directorate_lead")
    units = [create_unit(code=f"I{n:02d}", name=f"Iqpf {n}") for n in range(6)]
    units.append(create_unit(code="L01", name="Led one", lead=lead))
    units.append(create_unit(code="L02", name="Led two", lead=lead))
    wales = [create_unit(code=f"W{n:02d}", framework="nhs_wales") for n in range(3)]
    asleep = create_unit(code="Z01", name="Inactive")
    moved = create_unit(code="M01", name="Moved")
    levels = {
        "I00": {"performance": "2a"},
        "I01": {"performance": "3", "finance": "2b"},
        "I02": {"finance": "2b"},
        "L02": {"performance": "2a"},
        "Z01": {"performance": "3"},
        "M01": {"performance": "3"},
    }
    for unit in [*units, asleep, moved]:
        for track, level in levels.get(unit.code, {}).items():
            case = cases_of(unit)[track]
            case.level = level
            db.session.add(
                LevelChange(
                    case_id=case.id,
                    from_level="1",
                    to_level=level,
                    changed_at=datetime(2026, 5, 4, 9, tzinfo=UTC),
                )
            )
    for unit in wales[:2]:
        case = next(iter(cases_of(unit).values()))
        case.level = "3"
    asleep.is_active = False
    db.session.commit()
    # A unit moved to NHS Wales keeps its IQPF cases at 3; only the new framework counts.
    from workflow_app.services.org import open_cases_for_unit

    moved.framework = "nhs_wales"
    db.session.flush()
    open_cases_for_unit(moved)
    db.session.commit()
    return lead


def test_counts_and_open_escalations_match_the_full_register(app, create_person, create_unit):
    lead = mixed_world(create_person, create_unit)
    ceo = create_person("ceo")
    for person in (ceo, lead):
        rows = register_for(person)
        summary = register_summary(person)
        assert summary.total == len(rows)
        assert summary.tracks() == tracks_in(rows)
        assert level_counts_of(summary) == units_by_level(rows)
        expected = [
            (row.unit.id, case.id, row.since.get(case.track, case.level_since))
            for row in rows
            for case in sorted(row.escalated_cases, key=lambda case: case.id)
        ]
        page = open_escalations_page(summary)
        assert [(e.unit.id, e.case.id, e.since) for e in page.items] == expected
        assert page.total == len(expected)


def test_a_register_page_has_the_rows_of_the_full_register(app, create_person, create_unit):
    mixed_world(create_person, create_unit)
    ceo = create_person("ceo")
    rows = register_for(ceo)
    page = register_rows_page(ceo, register_summary(ceo))
    assert [row.unit.code for row in page.items] == [row.unit.code for row in rows]
    for light, full in zip(page.items, rows, strict=True):
        assert light.unit.kind_title == full.unit.kind_title
        assert {k: (c.id, c.level) for k, c in light.cases.items()} == {
            k: (c.id, c.level) for k, c in full.cases.items()
        }
        assert light.since == full.since
