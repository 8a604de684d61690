"""Check 22 (RELIABILITY-ANCHORS section 7): hostile CSV/XLSX imports.

A 50 MB upload and an xlsx zip bomb are refused without being read into memory (peak RSS of
a separate process doing it stays under 200 MB, from ``resource.getrusage``); UTF-16, BOMs
and Windows/latin-1 text are read; malformed rows, duplicates, formulas and NHS-number-like
values are refused by row; a file with a problem stores nothing. Export neutralising of
formula cells is tested in tests/imports/test_web_and_cli.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.imports.parse import UnreadableFile, parse_file

ROOT = Path(__file__).resolve().parents[2]
RSS_LIMIT_MB = 200
HEADER = "unit_code,measure_code,month,actual\n"


@pytest.fixture
def unit_with_measure(app, create_unit, create_domain, create_person):
    from workflow_app.models.measures import Measure

    analyst = create_person("performance_team")
    unit = create_unit(code="SURG", name="Surgery")
    db.session.add(
        Measure(
            unit_id=unit.id,
            domain_id=create_domain().id,
            code="RTT18",
            name="RTT18",
            target=Decimal(92),
            direction="higher_is_better",
            unit_of_measure="percent",
        )
    )
    db.session.commit()
    return analyst


def _zip_bomb(path: Path, unpacked_mb: int) -> None:
    """A real workbook whose sheet inflates to ``unpacked_mb`` MB of rows (about 1 MB packed)."""
    source = io.BytesIO()
    book = openpyxl.Workbook()
    book.active.append(["unit_code", "measure_code", "month", "actual"])
    book.save(source)
    row = b'<row><c t="inlineStr"><is><t>SURG</t></is></c><c><v>81.5</v></c></row>' * 1000
    with (
        zipfile.ZipFile(io.BytesIO(source.getvalue())) as original,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb,
    ):
        for member in original.infolist():
            if member.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(member, original.read(member))
                continue
            with bomb.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats'
                            b'.org/spreadsheetml/2006/main"><sheetData>')  # fmt: skip
                for _ in range(unpacked_mb * 1024 * 1024 // len(row)):
                    sheet.write(row)
                sheet.write(b"</sheetData></worksheet>")


PROBE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import _make_app, csrf_from, sign_in
from workflow_app.imports.parse import UnreadableFile, parse_file

url, email, big, bomb = sys.argv[2:6]
outcome = {}
try:
    parse_file(open(bomb, "rb").read(), "bomb.xlsx")
    outcome["bomb"] = "parsed"
except UnreadableFile as refused:
    outcome["bomb"] = str(refused)
app = _make_app(url)
client = app.test_client()
assert sign_in(client, email).status_code == 302
form = client.get("/data/upload")
# The multipart body is written to disk and streamed in, as a browser would send it: the
# test client would otherwise build it in this process's memory.
boundary = "----escalate-hostile-upload"
body = big + ".multipart"
with open(body, "wb") as out, open(big, "rb") as source:
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{csrf_from(form.text)}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
    )
    while chunk := source.read(1 << 20):
        out.write(chunk)
    out.write(f"\r\n--{boundary}--\r\n".encode())
with open(body, "rb") as stream:
    import os
    response = client.post(
        "/data/upload",
        input_stream=stream,
        content_length=os.path.getsize(body),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
outcome["upload_status"] = response.status_code
outcome["upload_text"] = response.get_data(as_text=True)
# getrusage's ru_maxrss keeps the parent's high-water mark across fork and exec (Linux
# keeps the larger of the old and new mm's peaks), so it would report pytest's size; the
# peak of this process's own memory is VmHWM in /proc/self/status.
try:
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    outcome["peak_rss_mb"] = int(hwm.split()[1]) / 1024
except OSError:
    outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(outcome))
"""


def test_a_50_mb_upload_and_a_zip_bomb_are_refused_in_under_200_mb(
    database_url, unit_with_measure, tmp_path
):
    from workflow_app.models.imports import ImportBatch

    big = tmp_path / "big.csv"
    with big.open("w") as handle:
        handle.write(HEADER)
        line = "SURG,RTT18,2026-10,81.5\n"
        handle.write(line * (50 * 1024 * 1024 // len(line)))
    bomb = tmp_path / "bomb.xlsx"
    _zip_bomb(bomb, unpacked_mb=130)
    assert bomb.stat().st_size < 5 * 1024 * 1024
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(ROOT),
            database_url,
            unit_with_measure.email,
            str(big),
            str(bomb),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    outcome = json.loads(probe.stdout.strip().splitlines()[-1])
    assert "unpacks to 130 MB" in outcome["bomb"]
    assert outcome["upload_status"] == 413
    assert "larger than 10 MB" in outcome["upload_text"]
    print(f"peak RSS of the refusing process: {outcome['peak_rss_mb']:.0f} MB")
    assert outcome["peak_rss_mb"] < RSS_LIMIT_MB
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(ImportBatch.id))) == 0


def test_the_command_line_refuses_a_file_over_the_limit_before_reading_it(
    app, unit_with_measure, tmp_path
):
    from workflow_app.cli.data import data_cli
    from workflow_app.models.measures import MonthlyActual

    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.write(HEADER.encode())
        handle.truncate(app.config["MAX_CONTENT_LENGTH"] + 1)  # sparse: never written out
    result = app.test_cli_runner().invoke(
        data_cli, ["import", str(big), "--as", unit_with_measure.email]
    )
    assert result.exit_code == 1, result.output
    assert "larger than 10 MB" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MonthlyActual)) == 0


ROWS = [
    ["unit_code", "measure_code", "month", "actual"],
    ["SURG", "RTT18", "2026-10", "81.5"],
    ["Surgery é £", "RTT18", "2026-09", "80"],
]


def _csv(rows) -> str:
    return "\r\n".join(",".join(r) for r in rows) + "\r\n"


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),  # Excel's "Unicode text" without a BOM
        ("cp1252", b""),  # older Excel "CSV" on Windows
        ("latin-1", b""),
    ],
)
def test_text_encodings_are_read_the_same(encoding, prefix):
    parsed = parse_file(prefix + _csv(ROWS).encode(encoding), "return.csv")
    assert parsed.problems == []
    assert [(r.unit_code, r.month_text, str(r.actual.value)) for r in parsed.rows] == [
        ("SURG", "2026-10", "81.5"),
        ("Surgery é £", "2026-09", "80"),
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00\x01\x02\x03binary\x00" * 100, "binary"),
        (b"\xff\xfe\x00\xd8", "UTF-16"),  # a lone surrogate: not text
        (b"PK\x03\x04 not really a zip", "could not be read"),
    ],
)
def test_unreadable_text_is_refused_with_a_clear_message(content, words):
    name = "x.xlsx" if content.startswith(b"PK") else "x.csv"
    with pytest.raises(UnreadableFile, match=words):
        parse_file(content, name)


def test_malformed_duplicate_formula_and_nhs_number_rows_are_refused_by_row(app, unit_with_measure):
    from workflow_app.imports.batches import create_batch, load_batch
    from workflow_app.imports.load import FileHasProblems
    from workflow_app.models.measures import MonthlyActual

    rows = [
        HEADER.strip(),
        "SURG,RTT18,2026-09,81.5",
        "SURG,RTT18,2026-09,82",  # duplicate key
        'SURG,RTT18,2026-08,"=HYPERLINK(""http://evil.test"",""click"")"',  # formula
        "943 476 5919,RTT18,2026-07,80",  # an NHS number where a unit code goes
        "SURG,RTT18,2026-06,9434765919",  # and where a percentage goes
        "SURG,RTT18",  # a short row
        'SURG,RTT18,2026-05,"81.5',  # an unterminated quote swallows the rest
    ]
    content = ("\n".join(rows) + "\n").encode()
    batch = create_batch(unit_with_measure, "hostile.csv", content)
    db.session.commit()
    problems = json.loads(batch.problems_json)
    rows_with_problems = {p["row"] for p in problems}
    assert {3, 4, 5, 6, 7} <= rows_with_problems, problems
    assert all(p["message"] for p in problems)
    with pytest.raises(FileHasProblems):
        load_batch(unit_with_measure, batch, only_valid=False)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MonthlyActual)) == 0


def test_an_xlsx_formula_cell_is_refused_not_evaluated(app, unit_with_measure):
    from workflow_app.imports.batches import create_batch

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["unit_code", "measure_code", "month", "actual"])
    sheet.append(["SURG", "RTT18", "2026-09", '=HYPERLINK("http://evil.test","81")'])
    sheet.append(["SURG", "RTT18", "2026-08", "=cmd|' /C calc'!A0"])
    buffer = io.BytesIO()
    book.save(buffer)
    batch = create_batch(unit_with_measure, "formulas.xlsx", buffer.getvalue())
    db.session.commit()
    # Read with cached values only (never evaluated): a formula without one has no value,
    # so the rows carry nothing to load.
    from workflow_app.imports.batches import valid_row_count

    assert valid_row_count(batch) == 0


def test_an_oversized_post_by_someone_who_may_not_upload_is_a_plain_413(make_app, create_person):
    from tests.conftest import sign_in

    app = make_app(MAX_CONTENT_LENGTH=2000)
    lead = create_person("directorate_lead")
    anonymous, signed_in = app.test_client(), app.test_client()
    sign_in(signed_in, lead.email)
    for client in (anonymous, signed_in):
        response = client.post(
            "/data/upload",
            data={"file": (io.BytesIO(b"x" * 5000), "big.csv")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 413  # not a 500 from the upload page's own handler
