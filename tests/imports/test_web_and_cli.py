"""The upload pages and ``escalate data import``."""

from __future__ import annotations

import io

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.imports.conftest import csv_bytes, xlsx_bytes
from workflow_app.cli.data import data_cli
from workflow_app.extensions import db
from workflow_app.models.imports import ImportBatch
from workflow_app.models.measures import MonthlyActual

LONG = "unit_code,measure_code,month,actual,trajectory\n"


def upload(client, content: bytes, name: str = "pack.csv"):
    page = client.get("/data/upload")
    assert page.status_code == 200, page.text
    return client.post(
        "/data/upload",
        data={"csrf_token": csrf_from(page.text), "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def actuals() -> int:
    return db.session.scalar(sa.select(sa.func.count(MonthlyActual.id)))


def test_upload_preview_load_and_a_second_load_is_refused(client, login, world):
    login(world["analyst"])
    response = upload(client, csv_bytes(LONG + "SURG,RTT18,2026-09,81.5,85"))
    assert response.status_code == 302, response.text
    preview = client.get(response.headers["Location"])
    assert "Load all rows" in preview.text and "Load only the valid rows" not in preview.text
    assert actuals() == 0
    token = csrf_from(preview.text)
    batch_id = db.session.scalar(sa.select(ImportBatch.id))
    loaded = client.post(
        f"/data/batches/{batch_id}/load", data={"csrf_token": token, "mode": "all"}
    )
    assert loaded.status_code == 302
    assert "loaded: 2 new values" in client.get(loaded.headers["Location"]).text
    assert actuals() == 1
    again = client.post(f"/data/batches/{batch_id}/load", data={"csrf_token": token, "mode": "all"})
    assert again.status_code == 409
    assert "already been loaded" in again.text
    assert actuals() == 1
    assert client.get("/data/").status_code == 200


def test_preview_lists_problems_and_offers_only_valid_rows(client, login, world):
    login(world["analyst"])
    response = upload(client, csv_bytes(LONG + "SURG,RTT18,2026-09,eighty,\nMED,RTT18,2026-09,70,"))
    preview = client.get(response.headers["Location"])
    assert "&#39;eighty&#39; is not a number" in preview.text
    assert "Load only the valid rows" in preview.text and "Load all rows" not in preview.text
    batch_id = db.session.scalar(sa.select(ImportBatch.id))
    refused = client.post(
        f"/data/batches/{batch_id}/load",
        data={"csrf_token": csrf_from(preview.text), "mode": "all"},
    )
    assert refused.status_code == 302 and actuals() == 0
    rejects = client.get(f"/data/batches/{batch_id}/rejects.csv")
    assert rejects.mimetype == "text/csv" and "eighty" in rejects.text


def test_a_bad_file_is_refused_on_the_form_and_nothing_is_stored(client, login, world):
    login(world["analyst"])
    response = upload(client, b"%PDF", "pack.pdf")
    assert response.status_code == 200
    assert "not a CSV or Excel" in response.text
    response = upload(client, csv_bytes("foo,bar\n1,2"))
    assert "header row was not recognised" in response.text
    assert db.session.scalar(sa.select(sa.func.count(ImportBatch.id))) == 0


def test_xlsx_upload(client, login, world):
    login(world["analyst"])
    content = xlsx_bytes(
        [["unit_code", "measure_code", "month", "actual"], ["SURG", "RTT18", "2026-09", 80]]
    )
    response = upload(client, content, "pack.xlsx")
    assert response.status_code == 302, response.text


def test_a_directorate_lead_gets_403(client, login, world, create_person):
    login(create_person("directorate_lead"))
    assert client.get("/data/upload").status_code == 403
    assert client.get("/data/").status_code == 403
    assert client.get("/data/template/performance.csv").status_code == 403


def test_csrf_is_required(client, login, world):
    login(world["analyst"])
    response = client.post(
        "/data/upload",
        data={"file": (io.BytesIO(b"x"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(ImportBatch.id))) == 0


def test_an_oversized_upload_is_refused_with_a_clear_message(make_app, world, create_person):
    from workflow_app.web.data import bp

    app = make_app(MAX_CONTENT_LENGTH=2000)
    if "data" not in app.blueprints:
        app.register_blueprint(bp)
    client = app.test_client()
    page = client.get("/auth/login")
    client.post(
        "/auth/login",
        data={
            "email": world["analyst"].email,
            "password": "correct horse battery staple",
            "csrf_token": csrf_from(page.text),
        },
    )
    form = client.get("/data/upload")
    response = client.post(
        "/data/upload",
        data={"csrf_token": csrf_from(form.text), "file": (io.BytesIO(b"x" * 5000), "big.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than 2,000 bytes" in response.text
    assert db.session.scalar(sa.select(sa.func.count(ImportBatch.id))) == 0


def test_templates_are_injection_safe_and_parse_back(client, login, world, create_unit):
    create_unit(code="=CMD")  # a hostile code someone managed to store
    login(world["analyst"])
    for name in ("performance", "performance-wide", "finance"):
        csv_file = client.get(f"/data/template/{name}.csv")
        assert csv_file.status_code == 200
        assert "'=CMD" in csv_file.data.decode("utf-8-sig") or name != "finance"
        xlsx_file = client.get(f"/data/template/{name}.xlsx")
        assert xlsx_file.status_code == 200 and xlsx_file.data.startswith(b"PK")
    from workflow_app.imports.parse import parse_file

    parsed = parse_file(client.get("/data/template/performance.xlsx").data, "t.xlsx")
    assert parsed.problems == [] and parsed.rows == []
    assert client.get("/data/template/nope.csv").status_code == 404


def test_cli_import_exit_codes_and_output(app, world, tmp_path, create_person):
    create_person("system_admin")
    runner = app.test_cli_runner()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(LONG + "SURG,RTT18,2026-09,eighty,\nMED,RTT18,2026-09,70,"))
    result = runner.invoke(data_cli, ["import", str(bad)])
    assert result.exit_code == 1
    assert "Row 2, column 'actual': 'eighty' is not a number" in result.output
    assert actuals() == 0
    assert db.session.scalar(sa.select(sa.func.count(ImportBatch.id))) == 0
    result = runner.invoke(
        data_cli, ["import", str(bad), "--only-valid", "--as", world["analyst"].email]
    )
    assert result.exit_code == 0, result.output
    assert "Loaded: 1 new, 0 revised, 0 unchanged, 1 rows rejected" in result.output
    big = tmp_path / "big.csv"
    big.write_bytes(csv_bytes(LONG + "MED,RTT18,2026-09,70,"))
    result = runner.invoke(data_cli, ["import", str(big)])
    assert result.exit_code == 0, result.output
    assert "0 new, 0 revised, 1 unchanged" in result.output
    lead = create_person("directorate_lead")
    result = runner.invoke(data_cli, ["import", str(big), "--as", lead.email])
    assert result.exit_code == 2 and "cannot load data" in result.output


def test_cli_progress_bar_for_large_files(app, world, tmp_path, create_person):
    create_person("system_admin")
    lines = [
        f"SURG,BEDS,{y}-{m:02d},{n},"
        for n, (y, m) in enumerate((y, m) for y in range(1900, 2026) for m in range(1, 13))
    ]
    big = tmp_path / "big.csv"
    big.write_bytes(csv_bytes(LONG + "\n".join(lines)))
    result = app.test_cli_runner().invoke(data_cli, ["import", str(big)])
    assert result.exit_code == 0, result.output
    assert "Loading" in result.output
    assert f"Loaded: {len(lines)} new" in result.output
