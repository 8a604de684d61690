"""The OpenAPI 3.1 document of ``/api/v1``, written by hand next to the code it describes.

tests/api/test_schemathesis.py runs schemathesis against a running server with this
document, so a response that does not match it fails the build.
"""

from __future__ import annotations

from typing import Any

from workflow_app.models.api_tokens import API_SCOPES
from workflow_app.models.meetings import MEETING_STATUSES
from workflow_app.models.plans import PLAN_STATUSES

MAX_ID = 2_147_483_647
PROBLEM = "application/problem+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


def _obj(properties: dict[str, dict], required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}
MONTH = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}
ID = {"type": "integer", "minimum": 1}


def _problem_response(description: str, headers: dict | None = None) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


ERRORS = {
    "400": _problem_response("A query parameter is not valid"),
    "401": _problem_response(
        "No token, or a token that is unknown, expired or revoked",
        {"WWW-Authenticate": {"schema": STRING, "required": True}},
    ),
    "403": _problem_response("The token lacks the scope, or its person may not do this"),
    "404": _problem_response("No such object, or one the token's person may not see"),
    "429": _problem_response("Too many requests with this token"),
    "500": _problem_response("An error on our side; nothing was changed"),
    "503": _problem_response(
        "The database cannot be reached just now; nothing was changed",
        {"Retry-After": {"schema": STRING, "required": True}},
    ),
}


def _responses(ok: dict, *codes: str) -> dict:
    return {"200": ok, **{code: ERRORS[code] for code in codes}}


def _json(description: str, schema: dict, *, paged: bool = False) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if paged:
        response["headers"] = {
            "Link": {
                "description": 'The next page, as <url>; rel="next" (absent on the last page)',
                "schema": STRING,
            }
        }
    return response


def _page(item: str) -> dict:
    return _obj({"data": {"type": "array", "items": _ref(item)}, "next": _nullable(STRING)})


def _param(name: str, where: str, schema: dict, description: str, required: bool = False):
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


PAGE_PARAMS = [
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size"),
    _param(
        "cursor",
        "query",
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        "Start after this id: take it from the previous page's `next`",
    ),
]
UNIT_FILTER = _param(
    "unit_id", "query", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "Only this unit"
)


def _path_id(name: str) -> dict:
    return _param(name, "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "Id")


def _get(summary: str, op_id: str, ok: dict, *, params=(), codes=("400", "401", "403", "429")):
    return {
        "get": {
            "summary": summary,
            "operationId": op_id,
            "parameters": list(params),
            "responses": _responses(ok, *codes, "500", "503"),
        }
    }


def _get_one(summary: str, op_id: str, description: str, schema: str, id_name: str) -> dict:
    """A GET of one object by its id in the path: 404 when it is not there or not visible."""
    return _get(
        summary,
        op_id,
        _json(description, _ref(schema)),
        params=[_path_id(id_name)],
        codes=("401", "403", "404", "429"),
    )


PERSON = _obj({"id": ID, "name": STRING})
TEXT = {"type": "string", "maxLength": 200}
NUMBER_OR_TEXT = {"type": ["number", "string", "null"], "maxLength": 200}

SCHEMAS: dict[str, dict] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": STRING,
            "title": STRING,
            "status": INTEGER,
            "detail": STRING,
            "error_id": STRING,
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "message": STRING,
                        "pointer": STRING,
                        "parameter": STRING,
                        "index": INTEGER,
                        "field": STRING,
                        "sheet": STRING,
                        "row": INTEGER,
                        "column": STRING,
                        "value": STRING,
                        "unit_code": STRING,
                        "measure_code": STRING,
                        "month": STRING,
                    },
                    "required": ["message"],
                },
            },
        },
        "required": ["type", "title", "status", "detail"],
    },
    "Person": PERSON,
    "Unit": _obj(
        {
            "id": ID,
            "code": STRING,
            "name": STRING,
            "kind": STRING,
            "framework": STRING,
            "parent_id": _nullable(INTEGER),
            "is_active": BOOLEAN,
            "accountable_executive": _nullable(_ref("Person")),
            "lead": _nullable(_ref("Person")),
            "budget_holder": _nullable(_ref("Person")),
            "earned_autonomy_since": _nullable(TIME),
        }
    ),
    "UnitLevels": _obj(
        {
            "unit_id": ID,
            "unit_code": STRING,
            "framework": STRING,
            "headline": _nullable(_obj({"track": STRING, "level": STRING, "case_id": ID})),
            "cases": {
                "type": "array",
                "items": _obj(
                    {
                        "case_id": ID,
                        "track": STRING,
                        "level": STRING,
                        "level_since": TIME,
                        "escalated": BOOLEAN,
                    }
                ),
            },
        }
    ),
    "Measure": _obj(
        {
            "id": ID,
            "unit_id": ID,
            "unit_code": STRING,
            "code": STRING,
            "name": STRING,
            "domain": _obj({"code": STRING, "name": STRING}),
            "kind": STRING,
            "target": NUMBER,
            "direction": {"type": "string", "enum": ["higher_is_better", "lower_is_better"]},
            "tolerance": _nullable(NUMBER),
            "unit_of_measure": STRING,
            "owner_id": _nullable(INTEGER),
            "is_active": BOOLEAN,
        }
    ),
    "MeasureValues": _obj(
        {
            "measure_id": ID,
            "target": NUMBER,
            "values": {
                "type": "array",
                "items": _obj(
                    {
                        "month": MONTH,
                        "actual": _nullable(NUMBER),
                        "revision": _nullable(INTEGER),
                        "recorded_at": _nullable(TIME),
                        "trajectory": _nullable(NUMBER),
                    }
                ),
            },
        }
    ),
    "Case": _obj(
        {
            "id": ID,
            "unit_id": ID,
            "framework": STRING,
            "track": STRING,
            "level": STRING,
            "level_since": TIME,
            "opened_at": TIME,
        }
    ),
    "Plan": _obj(
        {
            "id": ID,
            "case_id": ID,
            "unit_id": ID,
            "kind": STRING,
            "title": STRING,
            "status": {"type": "string", "enum": list(PLAN_STATUSES)},
            "risk_level": _nullable(STRING),
            "current_version": INTEGER,
            "submitted_at": _nullable(TIME),
            "approved_at": _nullable(TIME),
            "review_period_ends_on": _nullable(DAY),
            "completed_at": _nullable(TIME),
            "updated_at": TIME,
        }
    ),
    "Meeting": _obj(
        {
            "id": ID,
            "kind": STRING,
            "title": STRING,
            "unit_id": ID,
            "case_id": _nullable(INTEGER),
            "status": {"type": "string", "enum": list(MEETING_STATUSES)},
            "chair": _nullable(_ref("Person")),
            "requested_at": TIME,
            "hold_by": _nullable(DAY),
            "starts_at": _nullable(TIME),
            "ends_at": _nullable(TIME),
            "location": STRING,
        }
    ),
    "PerformanceData": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"const": "performance"},
            "only_valid": BOOLEAN,
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20000,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "unit_code": TEXT,
                        "measure_code": TEXT,
                        "month": {**TEXT, "description": "YYYY-MM"},
                        "actual": NUMBER_OR_TEXT,
                        "trajectory": NUMBER_OR_TEXT,
                    },
                    "required": ["unit_code", "measure_code", "month"],
                },
            },
        },
        "required": ["kind", "rows"],
    },
    "FinanceData": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"const": "finance"},
            "only_valid": BOOLEAN,
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20000,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "unit_code": TEXT,
                        "month": {**TEXT, "description": "YYYY-MM"},
                        "ytd_variance": NUMBER_OR_TEXT,
                        "forecast_variance": NUMBER_OR_TEXT,
                        "budget": NUMBER_OR_TEXT,
                    },
                    "required": ["unit_code", "month", "ytd_variance", "forecast_variance"],
                },
            },
        },
        "required": ["kind", "rows"],
    },
    "LoadResult": _obj(
        {
            "batch_id": ID,
            "kind": STRING,
            "rows": INTEGER,
            "created": INTEGER,
            "revised": INTEGER,
            "unchanged": INTEGER,
            "rejected": INTEGER,
            "only_valid": BOOLEAN,
            "problems": {"type": "array", "items": {"type": "object"}},
        }
    ),
}
SCHEMAS["CaseDetail"] = {
    "allOf": [
        _ref("Case"),
        _obj(
            {
                "history": {
                    "type": "array",
                    "items": _obj(
                        {
                            "from_level": _nullable(STRING),
                            "to_level": STRING,
                            "changed_at": TIME,
                            "decision_id": _nullable(INTEGER),
                        }
                    ),
                }
            }
        ),
    ]
}
SCHEMAS["PlanDetail"] = {
    "allOf": [
        _ref("Plan"),
        _obj(
            {
                "summary": STRING,
                "support_requested": STRING,
                "actions": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": ID,
                            "position": INTEGER,
                            "description": STRING,
                            "measure_id": _nullable(INTEGER),
                            "expected_effect": STRING,
                            "owner": _nullable(_ref("Person")),
                            "due_on": _nullable(DAY),
                            "delivered_on": _nullable(DAY),
                            "latest_update": _nullable(
                                _obj({"month": MONTH, "status": STRING, "narrative": STRING})
                            ),
                        }
                    ),
                },
                "trajectory": {
                    "type": "array",
                    "items": _obj({"measure_id": ID, "month": MONTH, "planned_value": NUMBER}),
                },
            }
        ),
    ]
}
SCHEMAS["MeetingDetail"] = {
    "allOf": [
        _ref("Meeting"),
        _obj(
            {
                "cancelled_reason": STRING,
                "action_plan_id": _nullable(INTEGER),
                "invitees": {
                    "type": "array",
                    "items": _obj({"person": _ref("Person"), "role": STRING, "attendance": STRING}),
                },
            }
        ),
    ]
}
for _name in ("Unit", "UnitLevels", "Measure", "Case", "Plan", "Meeting"):
    SCHEMAS[f"{_name}Page"] = _page(_name)

MONTHLY_DATA = {
    "post": {
        "summary": "Check and load a month's performance or finance data",
        "description": (
            "The same checks as the upload page. JSON rows, a CSV file or an .xlsx workbook "
            "(any layout the upload page accepts). If any row has a problem nothing is stored "
            "and the answer is 422 with every problem in `errors`, unless `only_valid` is set "
            "(in the JSON body, or as a query parameter with a file). Needs the `data:write` "
            "scope and a person in the performance team or a system administrator."
        ),
        "operationId": "postMonthlyData",
        "security": [{"bearerAuth": ["data:write"]}],
        "parameters": [
            _param(
                "only_valid",
                "query",
                {"type": "string", "enum": ["true", "false"]},
                "With a file body: load the valid rows and report the others",
            )
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [_ref("PerformanceData"), _ref("FinanceData")]}
                },
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {
            "200": _json("Loaded; counts of values and the rows left out", _ref("LoadResult")),
            "400": _problem_response("The body is not valid JSON, or a bad query parameter"),
            "401": ERRORS["401"],
            "403": ERRORS["403"],
            "409": _problem_response("Someone else changed the same data at the same time"),
            "413": _problem_response("The body is larger than the upload limit"),
            "415": _problem_response("The body is not JSON, CSV or XLSX"),
            "422": _problem_response(
                "Problems by row and column (or JSON pointer); nothing stored"
            ),
            "429": ERRORS["429"],
            "500": ERRORS["500"],
            "503": ERRORS["503"],
        },
    }
}


def openapi_document(server_url: str = "/api/v1") -> dict:
    """The OpenAPI 3.1 document, with ``server_url`` as the base of every path."""
    paths = {
        "/units": _get(
            "Units the token may see",
            "listUnits",
            _json("A page of units", _ref("UnitPage"), paged=True),
            params=[
                *PAGE_PARAMS,
                _param(
                    "active",
                    "query",
                    {"type": "string", "enum": ["true", "false"]},
                    "Only active (true) or inactive (false) units",
                ),
            ],
        ),
        "/units/{unit_id}": _get_one("One unit", "getUnit", "The unit", "Unit", "unit_id"),
        "/levels": _get(
            "Each active unit's level on every track, and its headline level",
            "listLevels",
            _json("A page of units' levels", _ref("UnitLevelsPage"), paged=True),
            params=PAGE_PARAMS,
        ),
        "/measures": _get(
            "Measures and their targets",
            "listMeasures",
            _json("A page of measures", _ref("MeasurePage"), paged=True),
            params=[*PAGE_PARAMS, UNIT_FILTER],
        ),
        "/measures/{measure_id}": _get_one(
            "One measure", "getMeasure", "The measure", "Measure", "measure_id"
        ),
        "/measures/{measure_id}/values": _get_one(
            "A measure's current actual and trajectory, month by month",
            "getMeasureValues",
            "The values",
            "MeasureValues",
            "measure_id",
        ),
        "/cases": _get(
            "Escalation cases (one per unit and track)",
            "listCases",
            _json("A page of cases", _ref("CasePage"), paged=True),
            params=[*PAGE_PARAMS, UNIT_FILTER],
        ),
        "/cases/{case_id}": _get_one(
            "One case with its level history", "getCase", "The case", "CaseDetail", "case_id"
        ),
        "/plans": _get(
            "Recovery, improvement and action plans",
            "listPlans",
            _json("A page of plans", _ref("PlanPage"), paged=True),
            params=[
                *PAGE_PARAMS,
                UNIT_FILTER,
                _param(
                    "status", "query", {"type": "string", "enum": list(PLAN_STATUSES)}, "Status"
                ),
            ],
        ),
        "/plans/{plan_id}": _get_one(
            "One plan with its actions and trajectory",
            "getPlan",
            "The plan",
            "PlanDetail",
            "plan_id",
        ),
        "/meetings": _get(
            "Meetings about the visible units, and those the person is invited to",
            "listMeetings",
            _json("A page of meetings", _ref("MeetingPage"), paged=True),
            params=[
                *PAGE_PARAMS,
                UNIT_FILTER,
                _param(
                    "status", "query", {"type": "string", "enum": list(MEETING_STATUSES)}, "Status"
                ),
            ],
        ),
        "/meetings/{meeting_id}": _get_one(
            "One meeting with its invitees",
            "getMeeting",
            "The meeting",
            "MeetingDetail",
            "meeting_id",
        ),
        "/monthly-data": MONTHLY_DATA,
    }
    for item in paths.values():
        if "get" in item:
            item["get"].setdefault("security", [{"bearerAuth": ["read"]}])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Escalate API",
            "version": "1.0.0",
            "description": (
                "Read units, measures, cases, levels, plans and meetings; post monthly data. "
                "Authenticate with `Authorization: Bearer <token>` (a system administrator "
                "creates tokens under Administration, API tokens). A token acts as its person: "
                "it sees only the units they may see. Lists are pages of at most `limit` rows; "
                "follow `next` (or the `Link` header) for the following page. Errors are "
                "RFC 9457 problem details (`application/problem+json`)."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Scopes: "
                    + "; ".join(f"{name}: {text}" for name, text in API_SCOPES.items()),
                }
            },
        },
    }
