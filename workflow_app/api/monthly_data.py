"""Posting monthly data: the same checks and the same loading as the upload page and the CLI.

The body is either a file (``text/csv`` or an ``.xlsx`` workbook, in any layout the upload
page accepts) or JSON rows. JSON rows are written out as a CSV file in the upload's long
layout and go through exactly the same path as an upload (``imports.batches``): parse,
validate against the database, keep the batch, load. If any row has a problem nothing is
stored and the answer is 422 with every problem in ``errors`` (by row and column for a file,
by JSON pointer for JSON rows); ``only_valid`` loads the valid rows and reports the others,
as ``escalate data import --only-valid`` does.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from flask import jsonify, request

from workflow_app.api.auth import api_person, require_scope
from workflow_app.api.problems import ApiProblem
from workflow_app.imports.batches import check_file, create_batch, load_batch
from workflow_app.imports.load import FileHasProblems
from workflow_app.imports.parse import (
    FINANCE,
    FINANCE_LONG,
    FINANCE_LONG_OPTIONAL,
    PERFORMANCE,
    PERFORMANCE_LONG,
    PERFORMANCE_LONG_OPTIONAL,
    Problem,
)
from workflow_app.permissions import can_manage_units
from workflow_app.services.errors import ServiceError
from workflow_app.services.unit_of_work import transaction

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_JSON_ROWS = 20_000
COLUMNS = {
    PERFORMANCE: PERFORMANCE_LONG + PERFORMANCE_LONG_OPTIONAL,
    FINANCE: FINANCE_LONG + FINANCE_LONG_OPTIONAL,
}
REQUIRED = {
    PERFORMANCE: ("unit_code", "measure_code", "month"),
    FINANCE: ("unit_code", "month", "ytd_variance", "forecast_variance"),
}
NUMBER_FIELDS = {"actual", "trajectory", "ytd_variance", "forecast_variance", "budget"}
TEXT_LIMIT = 200


def _invalid(errors: list[dict]) -> ApiProblem:
    count = len(errors)
    return ApiProblem(
        422,
        f"The request body does not have the expected shape ({count} problem"
        f"{'' if count == 1 else 's'}); nothing was stored.",
        errors=errors,
    )


def _cell(value) -> str:
    """A JSON value as the CSV cell the upload would have had."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _json_to_csv(body) -> tuple[str, bytes, bool]:
    """Check the JSON document's shape; returns (kind, CSV bytes, only_valid)."""
    if not isinstance(body, dict):
        raise _invalid([{"pointer": "", "message": "The body must be a JSON object."}])
    errors: list[dict] = []
    for key in sorted(set(body) - {"kind", "rows", "only_valid"}):
        errors.append({"pointer": f"/{key}", "message": f"Unknown field '{key}'."})
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in COLUMNS:
        errors.append({"pointer": "/kind", "message": "Give kind: 'performance' or 'finance'."})
    only_valid = body.get("only_valid", False)
    if not isinstance(only_valid, bool):
        errors.append({"pointer": "/only_valid", "message": "only_valid must be true or false."})
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows:
        errors.append({"pointer": "/rows", "message": "Give rows: a list of at least one row."})
    elif len(rows) > MAX_JSON_ROWS:
        errors.append(
            {
                "pointer": "/rows",
                "message": f"At most {MAX_JSON_ROWS:,} rows at a time; send them in parts.",
            }
        )
    if errors:
        raise _invalid(errors)
    columns = COLUMNS[kind]
    for index, row in enumerate(rows):
        where = f"/rows/{index}"
        if not isinstance(row, dict):
            errors.append({"pointer": where, "message": "Each row must be a JSON object."})
            continue
        for key in sorted(set(row) - set(columns)):
            errors.append(
                {
                    "pointer": f"{where}/{key}",
                    "message": f"Unknown field '{key}' for {kind} rows: use {', '.join(columns)}.",
                }
            )
        for key in REQUIRED[kind]:
            if key not in row:
                errors.append({"pointer": f"{where}/{key}", "message": f"'{key}' is missing."})
        for key in columns:
            value = row.get(key)
            if key in NUMBER_FIELDS:
                ok = value is None or (
                    isinstance(value, int | float | str) and not isinstance(value, bool)
                )
                message = f"'{key}' must be a number (or text such as '81.5%'), or null."
            else:
                ok = isinstance(value, str) or (value is None and key not in REQUIRED[kind])
                message = f"'{key}' must be text."
            if ok and isinstance(value, str) and ("\x00" in value or len(value) > TEXT_LIMIT):
                ok, message = False, f"'{key}' must be at most {TEXT_LIMIT} characters of text."
            if key in row and not ok:
                errors.append({"pointer": f"{where}/{key}", "message": message})
        if len(errors) >= 1000:
            break
    if errors:
        raise _invalid(errors)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key in columns])
    return kind, out.getvalue().encode("utf-8"), only_valid


def _json_problem(problem: Problem) -> dict:
    """A file problem located in the JSON rows (CSV row 2 is rows[0])."""
    entry = {"message": problem.message}
    if problem.row is not None:
        index = problem.row - 2
        entry["pointer"] = f"/rows/{index}" + (f"/{problem.column}" if problem.column else "")
        entry["index"] = index
    if problem.column:
        entry["field"] = problem.column
    for key in ("value", "unit_code", "measure_code", "month"):
        if getattr(problem, key):
            entry[key] = getattr(problem, key)
    return entry


def _file_problem(problem: Problem) -> dict:
    entry = {"message": str(problem)}
    for key in ("sheet", "row", "column", "value", "unit_code", "measure_code", "month"):
        value = getattr(problem, key)
        if value not in (None, ""):
            entry[key] = value
    return entry


def _truthy(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiProblem(
        400,
        f"The query parameter '{name}' must be true or false, not '{raw}'.",
        errors=[{"parameter": name, "message": "true or false"}],
    )


def register_endpoints(bp) -> None:
    """Attach the monthly data endpoint to the API blueprint."""

    @bp.post("/monthly-data")
    @require_scope("data:write")
    def post_monthly_data():
        """Check and load a month's performance or finance data; nothing stored on a problem."""
        person = api_person()
        if not can_manage_units(person):
            raise ApiProblem(
                403,
                "Only the performance team or a system administrator can load data; this "
                "token acts for someone who is neither.",
            )
        mimetype = request.mimetype
        if mimetype == "application/json":
            body = request.get_json(silent=True)
            if body is None:
                raise ApiProblem(400, "The body is not valid JSON.")
            kind, content, only_valid = _json_to_csv(body)
            filename = f"api-{kind}.csv"
            describe = _json_problem
        elif mimetype in (CSV_TYPE, XLSX_TYPE):
            only_valid = _truthy("only_valid")
            content = request.get_data(cache=False)
            filename = "api-upload.csv" if mimetype == CSV_TYPE else "api-upload.xlsx"
            describe = _file_problem
        else:
            raise ApiProblem(
                415,
                f"Send the data as application/json, {CSV_TYPE} or an .xlsx workbook "
                f"({XLSX_TYPE}), not '{mimetype or 'nothing'}'.",
            )
        try:
            parsed = check_file(content, filename)
        except ServiceError as error:  # unreadable file or unrecognised header row
            raise ApiProblem(
                422, f"Nothing was stored. {error}", errors=[{"message": str(error)}]
            ) from None
        problems = parsed.all_problems
        if problems and not only_valid:
            count = len(problems)
            raise ApiProblem(
                422,
                f"Nothing was stored: the data has {count} problem{'' if count == 1 else 's'}. "
                "Correct them and send the data again, or set only_valid to load the valid "
                "rows.",
                errors=[describe(p) for p in problems],
            )
        try:
            with transaction():
                batch = create_batch(person, filename, content)
                result = load_batch(person, batch, only_valid=only_valid)
                batch_id = batch.id
                # The rejects as found at load time (the database is checked again then).
                rejects = [
                    describe(Problem(**{k: v for k, v in found.items() if k != "text"}))
                    for found in batch.problems
                ]
        except FileHasProblems as error:  # the database changed between check and load
            raise ApiProblem(
                422, str(error), errors=[describe(p) for p in error.problems]
            ) from None
        return jsonify(
            {
                "batch_id": batch_id,
                "kind": parsed.kind,
                "rows": len(parsed.rows),
                "created": result.created,
                "revised": result.revised,
                "unchanged": result.unchanged,
                "rejected": result.rejected,
                "only_valid": only_valid,
                "problems": rejects,
            }
        )
