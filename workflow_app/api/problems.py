"""Errors as problem details (RFC 9457, ``application/problem+json``).

Every error under ``/api/v1`` is a JSON object with ``type``, ``title``, ``status`` and
``detail``; validation errors add ``errors``: one entry per problem, with the row and column
of an uploaded file or the JSON pointer of a posted field.
"""

from __future__ import annotations

import secrets

from flask import Response, current_app, json
from werkzeug.exceptions import HTTPException

from workflow_app.extensions import db

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:escalate:problem:"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
        **extra,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.slug = slug
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
    slug: str | None = None,
    **extra,
) -> Response:
    """A problem+json response."""
    body = {
        "type": TYPE_BASE + (slug or SLUGS.get(status, "error")),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def from_api_problem(problem: ApiProblem) -> Response:
    return problem_response(
        problem.status,
        problem.detail,
        errors=problem.errors,
        headers=problem.headers,
        slug=problem.slug,
        **problem.extra,
    )


# Werkzeug's stock descriptions are written for developers of the server; ours say what to do.
DETAILS = {
    400: "The request could not be understood. Check it against /api/v1/openapi.json.",
    404: "There is nothing at this address, or you may not see it.",
    405: "This address does not accept that method.",
    413: "The request body is too large. Send the month's data in smaller parts.",
    415: "The request body is not in a format this address accepts.",
    429: "Too many requests with this token. Wait a little and try again.",
    503: "Escalate cannot reach its database just now; nothing was changed. Try again soon.",
}


def from_http_error(error: HTTPException) -> Response:
    """A problem document for a werkzeug HTTP error (routing, limits, aborts)."""
    status = error.code or 500
    own = error.description if error.description != type(error).description else None
    detail = own or DETAILS.get(status) or TITLES.get(status, "Error")
    # Keep werkzeug's Allow (405) and Retry-After (429, 503) headers.
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() in ("allow", "retry-after")
    }
    if status == 429 and not any(name.lower() == "retry-after" for name in headers):
        limit = getattr(getattr(error, "limit", None), "limit", None)  # Flask-Limiter's
        if limit is not None:
            headers["Retry-After"] = str(int(limit.get_expiry()))
    if status == 500:
        return internal_error(error)
    return problem_response(status, detail, headers=headers)


def internal_error(error: BaseException) -> Response:
    """500 with an id to quote; the details go to the log only."""
    db.session.rollback()
    error_id = secrets.token_hex(4)
    current_app.logger.exception("Unhandled API error %s", error_id, exc_info=error)
    return problem_response(
        500,
        f"Something went wrong on our side and nothing was changed. Quote error {error_id} "
        "to the system administrator.",
        error_id=error_id,
    )


def database_unavailable(error: BaseException) -> Response:
    """503 when the database cannot be reached or written; the transaction is rolled back."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; best effort
        db.session.close()
    current_app.logger.error("Database unavailable during an API request: %s", error)
    return problem_response(503, DETAILS[503], headers={"Retry-After": "30"})
