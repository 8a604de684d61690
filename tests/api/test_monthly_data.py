"""Posting monthly data: the upload's checks, problems as problem+json ``errors``, nothing
stored when a row has a problem unless ``only_valid`` is asked for."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.api.conftest import bearer
from tests.security.conftest import table_counts
from workflow_app.extensions import db
from workflow_app.models.imports import ImportBatch
from workflow_app.models.measures import MonthlyActual

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def people(app, clock, create_person, create_unit, create_domain):
    """Unit UB with its measure RTT18; one person of the performance team, one CEO."""
    from workflow_app.models.measures import Measure

    clock.move_to("2026-11-23 10:00:00+00:00")
    unit = create_unit(code="UB")
    db.session.add(
        Measure(
            unit_id=unit.id,
            domain_id=create_domain().id,
            code="RTT18",
            name="Referral to treatment",
            target=Decimal(92),
            direction="higher_is_better",
            unit_of_measure="percent",
        )
    )
    db.session.commit()
    return {"performance_team": create_person("performance_team"), "ceo": create_person("ceo")}


@pytest.fixture
def writer(people, issue_token):
    return bearer(issue_token(people["performance_team"], "read", "data:write"))


def actuals() -> list[tuple[str, Decimal, int]]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(MonthlyActual).order_by(MonthlyActual.period))
    return [(f"{a.period:%Y-%m}", a.value, a.revision) for a in rows]


def post(app, headers, **kwargs):
    return app.test_client().post("/api/v1/monthly-data", headers=headers, **kwargs)


def test_json_rows_are_checked_and_loaded_like_an_upload(app, writer):
    rows = [
        {"unit_code": "UB", "measure_code": "RTT18", "month": "2026-09", "actual": 76.5},
        {"unit_code": "UB", "measure_code": "RTT18", "month": "2026-10", "actual": "77%"},
    ]
    response = post(app, writer, json={"kind": "performance", "rows": rows})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["created"], body["revised"], body["rejected"]) == (2, 0, 0)
    assert actuals() == [("2026-09", Decimal("76.5"), 1), ("2026-10", Decimal("77"), 1)]
    batch = db.session.get(ImportBatch, body["batch_id"])
    assert batch.status == "loaded" and batch.filename == "api-performance.csv"

    # The same rows again change nothing; a corrected value is a new revision.
    rows[1]["actual"] = 78
    body = post(app, writer, json={"kind": "performance", "rows": rows}).json
    assert (body["created"], body["revised"], body["unchanged"]) == (0, 1, 1)
    assert actuals()[-1] == ("2026-10", Decimal("78"), 2)


def test_a_row_with_a_problem_stores_nothing_and_says_where(app, writer):
    rows = [
        {"unit_code": "UB", "measure_code": "RTT18", "month": "2026-09", "actual": 76.5},
        {"unit_code": "NOPE", "measure_code": "RTT18", "month": "2026-10", "actual": 1},
        {"unit_code": "UB", "measure_code": "RTT18", "month": "2026-10", "actual": "lots"},
    ]
    before = table_counts()
    response = post(app, writer, json={"kind": "performance", "rows": rows})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "Nothing was stored" in response.json["detail"]
    errors = {e["pointer"]: e for e in response.json["errors"]}
    assert set(errors) == {"/rows/1/unit_code", "/rows/2/actual"}
    assert "NOPE" in errors["/rows/1/unit_code"]["message"]
    assert errors["/rows/2/actual"]["message"].startswith("'lots' is not a number")
    assert table_counts() == before


def test_only_valid_loads_the_good_rows_and_reports_the_others(app, writer):
    rows = [
        {"unit_code": "UB", "measure_code": "RTT18", "month": "2026-09", "actual": 76.5},
        {"unit_code": "UB", "measure_code": "NOPE", "month": "2026-10", "actual": 1},
    ]
    response = post(app, writer, json={"kind": "performance", "rows": rows, "only_valid": True})
    assert response.status_code == 200
    assert (response.json["created"], response.json["rejected"]) == (1, 1)
    assert [p["pointer"] for p in response.json["problems"]] == ["/rows/1/measure_code"]
    assert actuals() == [("2026-09", Decimal("76.5"), 1)]


def test_a_csv_file_is_accepted_with_problems_by_row_and_column(app, writer):
    good = 'unit_code,month,ytd_variance,forecast_variance\nUB,2026-10,"£742,310",968400\n'
    response = post(app, writer, data=good, content_type="text/csv")
    assert response.status_code == 200, response.json
    assert response.json["kind"] == "finance"

    bad = "unit_code,month,ytd_variance,forecast_variance\nUB,2026-10,lots,1\n"
    before = table_counts()
    response = post(app, writer, data=bad, content_type="text/csv")
    assert response.status_code == 422
    (error,) = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "ytd_variance")
    assert table_counts() == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"rows": []}, "/kind"),
        ({"kind": "performance", "rows": []}, "/rows"),
        (
            {"kind": "finance", "rows": [{"unit_code": "UB", "month": "2026-10"}]},
            "/rows/0/ytd_variance",
        ),
        ({"kind": "performance", "rows": [{"unit_code": "UB", "month": 5}]}, "/rows/0/month"),
        ({"kind": "performance", "rows": [{"unit_code": "UB", "colour": "red"}]}, "/rows/0/colour"),
        ({"kind": "performance", "rows": [], "extra": 1}, "/extra"),
        ({"kind": {"a": 1}, "rows": [1]}, "/kind"),
    ],
)
def test_a_body_of_the_wrong_shape_is_422_with_pointers(app, writer, body, pointer):
    before = table_counts()
    response = post(app, writer, json=body)
    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in response.json["errors"]]
    assert table_counts() == before


def test_unreadable_bodies_are_refused_clearly(app, writer):
    response = post(app, writer, data="{not json", content_type="application/json")
    assert response.status_code == 400
    response = post(app, writer, data="hello", content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.json["detail"]
    response = post(app, writer, data=b"not a workbook", content_type=XLSX)
    assert response.status_code == 422
    assert "Excel" in response.json["detail"]


def test_only_the_performance_team_may_load_even_with_the_scope(app, people, issue_token):
    headers = bearer(issue_token(people["ceo"], "read", "data:write"))
    rows = [{"unit_code": "UB", "measure_code": "RTT18", "month": "2026-09", "actual": 1}]
    before = table_counts()
    response = post(app, headers, json={"kind": "performance", "rows": rows})
    assert response.status_code == 403
    assert table_counts() == before


def test_a_body_over_the_upload_limit_is_413(make_app, people, issue_token):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    headers = bearer(issue_token(people["performance_team"], "data:write"))
    response = post(app, headers, data="x" * 2000, content_type="text/csv")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_a_concurrent_change_is_409_and_rolls_everything_back(app, writer, monkeypatch):
    import workflow_app.api.monthly_data as monthly_data
    from workflow_app.services.errors import Conflict

    def clash(*_args, **_kwargs):
        raise Conflict("Someone else loaded the same values at the same time.")

    monkeypatch.setattr(monthly_data, "load_batch", clash)
    rows = [{"unit_code": "UB", "measure_code": "RTT18", "month": "2026-09", "actual": 1}]
    before = table_counts()
    response = post(app, writer, json={"kind": "performance", "rows": rows})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert table_counts() == before  # not even the batch row
