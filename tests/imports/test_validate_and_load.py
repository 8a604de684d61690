"""Validation against the database, and loading: idempotent, revisions, only-valid rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.imports.conftest import csv_bytes
from workflow_app.extensions import db
from workflow_app.imports.batches import create_batch, load_batch
from workflow_app.imports.export import rejects_csv
from workflow_app.imports.load import FileHasProblems, load_rows
from workflow_app.imports.parse import parse_file
from workflow_app.imports.validate import validate
from workflow_app.models.audit import AuditEvent
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.services.errors import Conflict, PermissionDenied

LONG = "unit_code,measure_code,month,actual,trajectory\n"


def counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (MonthlyActual, TrajectoryValue, FinancePosition)
    )


def problems_of(text: str, name: str = "p.csv") -> list[str]:
    parsed = parse_file(csv_bytes(text), name)
    validate(parsed)
    return [str(p) for p in parsed.all_problems]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("NOPE,RTT18,2026-09,80,", "Row 2, column 'unit_code': There is no unit with the code"),
        ("SURG,NOPE,2026-09,80,", "Row 2, column 'measure_code': SURG has no measure"),
        ("SURG,RTT18,2026-11,80,", "Row 2, column 'month': 2026-11 is in the future"),
        ("SURG,RTT18,13/2026,80,", "Row 2, column 'month': '13/2026' is not a month"),
        ("SURG,RTT18,2026-09,101,", "Row 2, column 'actual': '101' is outside 0-100"),
        ("SURG,BEDS,2026-09,-3,", "Row 2, column 'actual': '-3' is negative, but BEDS is a count"),
        ("SURG,BEDS,2026-09,2.5,", "Row 2, column 'actual': '2.5' is not a whole number"),
        ("SURG,WAIT,2026-09,12%,", "Row 2, column 'actual': '12%' is a percentage, but WAIT"),
        ("SURG,WAIT,2026-09,£12,", "Row 2, column 'actual': '£12' is an amount in pounds"),
        ("SURG,RTT18,2026-09,eighty,", "Row 2, column 'actual': 'eighty' is not a number"),
    ],
)
def test_each_bad_input_names_row_and_column_and_nothing_is_stored(world, line, expected):
    found = problems_of(LONG + line)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found
    parsed = parse_file(csv_bytes(LONG + line), "p.csv")
    with pytest.raises(FileHasProblems):
        load_rows(world["analyst"], parsed, only_valid=False)
    db.session.rollback()
    assert counts() == (0, 0, 0)


def test_a_future_trajectory_is_a_plan_and_allowed(world):
    assert problems_of(LONG + "SURG,RTT18,2027-01,,90") == []


def test_duplicate_rows_are_reported_against_the_first(world):
    found = problems_of(LONG + "SURG,RTT18,2026-09,80,\nSURG,RTT18,2026-09,81,")
    assert found == [
        "Row 3, column 'unit_code': This row repeats row 2 (same unit, measure and month). "
        "Keep one of the two rows and delete the other."
    ]


def test_finance_checks(world):
    head = "unit_code,month,ytd_variance,forecast_variance\n"
    found = problems_of(head + "SURG,2026-09,5%,\nSURG,2026-08,1.234,10", "f.csv")
    assert len(found) == 3
    for start in (
        "Row 2, column 'ytd_variance': '5%' is a percentage",
        "Row 2, column 'forecast_variance': The forecast outturn variance is blank",
        "Row 3, column 'ytd_variance': '1.234' has more than 2 decimal places",
    ):
        assert any(p.startswith(start) for p in found), (start, found)


def test_same_file_twice_changes_nothing(world):
    content = csv_bytes(LONG + "SURG,RTT18,2026-09,81.5%,85\nSURG,BEDS,2026-09,120,")
    first = load_rows(world["analyst"], parse_file(content, "p.csv"), only_valid=False)
    db.session.commit()
    assert (first.created, first.revised, first.unchanged) == (3, 0, 0)
    before = counts()
    second = load_rows(world["analyst"], parse_file(content, "p.csv"), only_valid=False)
    db.session.commit()
    assert (second.created, second.revised, second.unchanged) == (0, 0, 3)
    assert second.changed == set()
    assert counts() == before == (2, 1, 0)


def test_a_corrected_value_is_a_new_revision_and_the_old_one_stays(world):
    analyst = world["analyst"]
    load_rows(
        analyst, parse_file(csv_bytes(LONG + "SURG,RTT18,2026-09,80,85"), "a.csv"), only_valid=False
    )
    result = load_rows(
        analyst,
        parse_file(csv_bytes(LONG + "SURG,RTT18,2026-09,82,86"), "b.csv"),
        only_valid=False,
    )
    db.session.commit()
    assert (result.created, result.revised) == (0, 2)
    assert result.changed == {(world["surg"].id, date(2026, 9, 1))}
    revisions = db.session.execute(
        sa.select(
            MonthlyActual.revision,
            MonthlyActual.value,
            MonthlyActual.source,
            MonthlyActual.recorded_by_id,
        ).order_by(MonthlyActual.revision)
    ).all()
    assert [(r, Decimal(v), s, who) for r, v, s, who in revisions] == [
        (1, Decimal(80), "a.csv", analyst.id),
        (2, Decimal(82), "b.csv", analyst.id),
    ]
    assert Decimal(db.session.scalar(sa.select(TrajectoryValue.value))) == 86
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert actions.count("data.imported") == 2
    assert "data.trajectory_changed" in actions


def test_finance_revisions_keep_the_budget_when_left_blank(world):
    head = "unit_code,month,ytd_variance,forecast_variance,budget\n"
    load_rows(
        world["analyst"],
        parse_file(csv_bytes(head + "SURG,2026-09,100,200,5000"), "f.csv"),
        only_valid=False,
    )
    again = load_rows(
        world["analyst"],
        parse_file(csv_bytes(head + "SURG,2026-09,100,200,"), "f.csv"),
        only_valid=False,
    )
    assert again.unchanged == 1
    changed = load_rows(
        world["analyst"],
        parse_file(csv_bytes(head + "SURG,2026-09,600000,200,"), "f.csv"),
        only_valid=False,
    )
    db.session.commit()
    assert changed.revised == 1
    rows = db.session.execute(
        sa.select(
            FinancePosition.revision, FinancePosition.ytd_variance, FinancePosition.budget
        ).order_by(FinancePosition.revision)
    ).all()
    assert [(r, Decimal(y), Decimal(b)) for r, y, b in rows] == [
        (1, Decimal(100), Decimal(5000)),
        (2, Decimal(600000), Decimal(5000)),
    ]


def test_only_valid_loads_the_valid_rows_and_the_rejects_csv_lists_the_others(world):
    text = (
        LONG
        + 'SURG,RTT18,2026-09,80,\n=HYPERLINK("http://x"),RTT18,2026-09,80,\nMED,RTT18,2026-08,70,'
    )
    batch = create_batch(world["analyst"], "p.csv", csv_bytes(text))
    db.session.commit()
    assert batch.problem_count == 1
    result = load_batch(world["analyst"], batch, only_valid=True)
    db.session.commit()
    assert (result.created, result.rejected) == (2, 1)
    assert result.changed == {
        (world["surg"].id, date(2026, 9, 1)),
        (world["med"].id, date(2026, 8, 1)),
    }
    report = rejects_csv(batch.problems).decode("utf-8-sig").splitlines()
    assert report[0] == "sheet,row,column,value,unit_code,measure_code,month,problem"
    assert len(report) == 2
    assert report[1].startswith(',3,unit_code,"\'=HYPERLINK(""http://x"")","\'=HYPERLINK(')
    with pytest.raises(Conflict, match="already been loaded"):
        load_batch(world["analyst"], batch, only_valid=True)


def test_wide_layout_loads_actuals_and_trajectories(world):
    text = (
        "unit_code,measure_code,kind,2026-09,2026-10,2027-01\n"
        "SURG,RTT18,actual,80,81,\nSURG,RTT18,trajectory,85,86,90"
    )
    result = load_rows(world["analyst"], parse_file(csv_bytes(text), "w.csv"), only_valid=False)
    db.session.commit()
    assert result.created == 5
    assert counts() == (2, 3, 0)


def test_only_the_performance_team_may_load(world, create_person):
    lead = create_person("directorate_lead")
    with pytest.raises(PermissionDenied):
        load_rows(
            lead, parse_file(csv_bytes(LONG + "SURG,RTT18,2026-09,80,"), "p.csv"), only_valid=False
        )
    assert db.session.scalar(sa.select(sa.func.count(Measure.id))) == 4


def test_load_right_after_the_check_reuses_it_but_sees_a_changed_measure(world):
    """load_rows re-validates; with nothing changed since validate() it reuses that result
    (decision 0035), and a measure changed in between is checked again, row by row."""
    text = LONG + "SURG,BEDS,2026-09,7,\nSURG,RTT18,2026-09,80.5,"
    parsed = parse_file(csv_bytes(text), "p.csv")
    first = validate(parsed)
    assert len(first) == 2 and parsed.all_problems == []
    again = validate(parsed)
    assert all(a is b for a, b in zip(again, first, strict=True))  # reused, not re-checked

    rtt = db.session.scalar(
        sa.select(Measure).where(Measure.code == "RTT18", Measure.unit_id == world["surg"].id)
    )
    rtt.unit_of_measure = "count"
    db.session.flush()
    with pytest.raises(FileHasProblems) as raised:
        load_rows(world["analyst"], parsed, only_valid=False)
    assert "'80.5' is not a whole number" in str(raised.value.problems[0])
    db.session.rollback()
