"""The JSON API under ``/api/v1`` for the performance and BI teams.

Bearer tokens only (:mod:`workflow_app.api.auth`), problem+json errors
(:mod:`workflow_app.api.problems`), keyset pagination (:mod:`workflow_app.api.pagination`),
read endpoints (:mod:`workflow_app.api.resources`), posting monthly data
(:mod:`workflow_app.api.monthly_data`) and the OpenAPI document (:mod:`workflow_app.api.openapi`).
"""

from __future__ import annotations

import hashlib

import sqlalchemy.exc as sa_exc
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from workflow_app.api import monthly_data, resources
from workflow_app.api.openapi import openapi_document
from workflow_app.api.problems import (
    ApiProblem,
    database_unavailable,
    from_api_problem,
    from_http_error,
    internal_error,
    problem_response,
)
from workflow_app.extensions import limiter
from workflow_app.services.errors import Conflict, NotFound, PermissionDenied, ServiceError

PREFIX = "/api/v1"
DEFAULT_RATE_LIMIT = "600 per minute"

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def is_api_request() -> bool:
    """True for a request to an address under ``/api/v1`` (matched or not)."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _rate_limit() -> str:
    return current_app.config.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def _rate_key() -> str:
    # Per token (its hash, never the secret itself); per address without one.
    header = request.headers.get("Authorization", "")
    if header:
        return "api-token:" + hashlib.sha256(header.encode("utf-8", "replace")).hexdigest()
    return "api-address:" + (request.remote_addr or "")


limiter.limit(_rate_limit, key_func=_rate_key)(bp)


@bp.get("/openapi.json")
@limiter.exempt
def openapi():
    """The OpenAPI 3.1 document (public: it describes the API and holds no data)."""
    return jsonify(openapi_document(request.script_root + PREFIX))


resources.register_endpoints(bp)
monthly_data.register_endpoints(bp)


@bp.after_request
def _no_store(response):
    # Answers depend on the token; never cache them in a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Vary", "Authorization")
    return response


@bp.errorhandler(ApiProblem)
def _api_problem(problem: ApiProblem):
    return from_api_problem(problem)


@bp.errorhandler(PermissionDenied)
def _permission_denied(error: PermissionDenied):
    return problem_response(403, str(error))


@bp.errorhandler(NotFound)
def _not_found(error: NotFound):
    return problem_response(404, str(error))


@bp.errorhandler(Conflict)
def _conflict(error: Conflict):
    return problem_response(409, str(error))


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    return problem_response(422, str(error))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return from_http_error(error)


@bp.errorhandler(sa_exc.OperationalError)
@bp.errorhandler(sa_exc.InterfaceError)
def _database_unavailable(error: sa_exc.DBAPIError):
    return database_unavailable(error)


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    return internal_error(error)
