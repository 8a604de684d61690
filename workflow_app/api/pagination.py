"""Query parameters and keyset pagination for the list endpoints.

Lists are ordered by id. ``limit`` (1 to 200, default 50) sets the page size and ``cursor``
the id after which the page starts; the answer's ``next`` (and its ``Link: rel="next"``
header) is the address of the following page, or null on the last one. Keyset pagination
never skips or repeats a row when rows are added between two pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import jsonify, request

from workflow_app.api.problems import ApiProblem
from workflow_app.extensions import db

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2_147_483_647  # ids are 32-bit integers in both databases


def bad_parameter(name: str, message: str) -> ApiProblem:
    """400 for a query parameter, with the parameter named in ``errors``."""
    return ApiProblem(
        400,
        f"The query parameter '{name}' is not valid: {message}",
        errors=[{"parameter": name, "message": message}],
    )


def int_arg(name: str, *, default: int | None = None, minimum: int = 1, maximum: int = MAX_ID):
    """An integer query parameter within bounds, or ``default`` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise bad_parameter(name, f"'{raw}' is not a whole number from {minimum} to {maximum}.")
    value = int(text)
    if not minimum <= value <= maximum:
        raise bad_parameter(name, f"{value} is not between {minimum} and {maximum}.")
    return value


def choice_arg(name: str, choices: Iterable[str]) -> str | None:
    """A query parameter that must be one of ``choices`` (None when absent)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    allowed = list(choices)
    if raw not in allowed:
        raise bad_parameter(name, f"'{raw}' is not one of {', '.join(allowed)}.")
    return raw


@dataclass
class Page:
    items: list[Any]
    next_cursor: int | None


def paginate(query: sa.Select, id_column, *, unique: bool = False) -> Page:
    """One page of ``query`` (which selects one entity) after the request's cursor."""
    limit = int_arg("limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    cursor = int_arg("cursor", default=None, minimum=0)
    if cursor is not None:
        query = query.where(id_column > cursor)
    result = db.session.scalars(query.order_by(id_column).limit(limit + 1))
    rows = list(result.unique() if unique else result)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def page_response(page: Page, serialise: Callable[[Any], dict]):
    """``{"data": [...], "next": url|null}`` with a ``Link`` header for the next page."""
    next_url = None
    if page.next_cursor is not None:
        pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        pairs.append(("cursor", str(page.next_cursor)))
        next_url = f"{request.base_url}?{urlencode(pairs)}"
    response = jsonify({"data": [serialise(item) for item in page.items], "next": next_url})
    if next_url:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response
