"""Fixtures for the data import: the data blueprint, a fixed clock, units and measures."""

from __future__ import annotations

import io

import pytest

from workflow_app.extensions import db
from workflow_app.models.measures import Measure


@pytest.fixture(autouse=True)
def _data_blueprint(app, clock):
    """Register the blueprint until the lead adds it to ``register_web``; fix the date."""
    from workflow_app.web.data import bp

    if "data" not in app.blueprints:
        app.register_blueprint(bp)


@pytest.fixture
def world(create_unit, create_domain, create_person):
    """SURG with RTT18 (percent), BEDS (count), WAIT (days); MED with RTT18; an analyst."""
    domain = create_domain()
    surg = create_unit(code="SURG", name="Surgery")
    med = create_unit(code="MED", name="Medicine")
    for unit, code, uom in (
        (surg, "RTT18", "percent"),
        (surg, "BEDS", "count"),
        (surg, "WAIT", "days"),
        (med, "RTT18", "percent"),
    ):
        db.session.add(
            Measure(
                unit_id=unit.id,
                domain_id=domain.id,
                code=code,
                name=code,
                target=92,
                direction="higher_is_better",
                unit_of_measure=uom,
            )
        )
    db.session.commit()
    analyst = create_person("performance_team", email="analyst@example.nhs.uk")
    return {"surg": surg, "med": med, "analyst": analyst}


def csv_bytes(text: str) -> bytes:
    return text.strip().replace("\n", "\r\n").encode() + b"\r\n"


def xlsx_bytes(rows, title="Sheet1", formats=None, extra_sheets=()) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    for (r, c), fmt in (formats or {}).items():
        sheet.cell(row=r, column=c).number_format = fmt
    for name, more in extra_sheets:
        extra = book.create_sheet(name)
        for row in more:
            extra.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
