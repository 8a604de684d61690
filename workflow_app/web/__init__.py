"""The web layer: blueprints, error pages, security headers and template helpers."""

from __future__ import annotations

import secrets

import sqlalchemy.exc as sa_exc
from flask import Flask, current_app, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from workflow_app.clock import to_london
from workflow_app.extensions import db
from workflow_app.models.roles import ROLE_TITLES
from workflow_app.permissions import (
    can_manage_people,
    can_manage_units,
    can_read_audit,
    can_read_outbox,
)
from workflow_app.services.errors import Conflict, NotFound, PermissionDenied

#: SQLite's words for a database file that cannot be written (issue 9).
UNWRITABLE_DATABASE = ("readonly database", "database or disk is full", "disk i/o error")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def register_web(app: Flask) -> None:
    """Register blueprints, error handlers, headers and template helpers on ``app``."""
    from workflow_app.api import bp as api_bp
    from workflow_app.extensions import csrf
    from workflow_app.web.admin import bp as admin_bp
    from workflow_app.web.api_tokens import bp as api_tokens_bp
    from workflow_app.web.auth import bp as auth_bp
    from workflow_app.web.cases import bp as cases_bp
    from workflow_app.web.data import bp as data_bp
    from workflow_app.web.deadlines import bp as deadlines_bp
    from workflow_app.web.decisions import bp as decisions_bp
    from workflow_app.web.frameworks import bp as frameworks_bp
    from workflow_app.web.home import bp as home_bp
    from workflow_app.web.letters import bp as letters_bp
    from workflow_app.web.meetings import bp as meetings_bp
    from workflow_app.web.plans import bp as plans_bp
    from workflow_app.web.proposals import bp as proposals_bp
    from workflow_app.web.reports import bp as reports_bp
    from workflow_app.web.search import bp as search_bp
    from workflow_app.web.units import bp as units_bp

    for blueprint in (
        auth_bp,
        home_bp,
        units_bp,
        cases_bp,
        deadlines_bp,
        proposals_bp,
        decisions_bp,
        plans_bp,
        data_bp,
        letters_bp,
        meetings_bp,
        frameworks_bp,
        admin_bp,
        search_bp,
        reports_bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(api_tokens_bp)
    app.register_blueprint(api_bp)
    # The API authenticates by bearer token only, never by the session cookie, so a forged
    # cross-site request carries no credentials and needs no CSRF token.
    csrf.exempt(api_bp)

    _register_error_pages(app)
    app.after_request(_security_headers)
    app.context_processor(_template_context)
    app.add_template_filter(_london, "london")
    app.add_template_filter(_role_title, "role_title")


def _london(value, fmt: str = "%d %b %Y %H:%M") -> str:
    local = to_london(value)
    return local.strftime(fmt) if local is not None else ""


def _role_title(role: str) -> str:
    return ROLE_TITLES.get(role, role.replace("_", " ").capitalize())


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    if current_user and getattr(current_user, "is_authenticated", False):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _template_context() -> dict:
    items = []
    if getattr(current_user, "is_authenticated", False):
        section = request.endpoint.split(".")[0] if request.endpoint is not None else None
        items = [
            {"href": href, "label": label, "active": blueprint == section}
            for href, label, blueprint in _menu_for(current_user)
        ]
    return {"nav_items": items, "organisation_name": current_app.config["ORGANISATION_NAME"]}


def _menu_for(person) -> tuple[tuple[str, str, str], ...]:
    """The menu a person sees: (href, label, blueprint) of each entry.

    It depends only on the person's roles (and where the app is mounted), so it is built
    once per set of roles: building it (ten ``url_for`` calls and the permission checks)
    on every page was a visible part of a page's cost (bench/bench_pages.py, 0037).
    """
    roles = frozenset(person.roles)
    key = (roles, request.script_root)
    menus = current_app.extensions.setdefault("escalate_menus", {})
    menu = menus.get(key)
    if menu is None:
        entries = [
            ("home.index", "Home"),
            ("units.index", "Units"),
            ("deadlines.index", "Deadlines"),
            ("meetings.index", "Meetings"),
        ]
        if person.sees_whole_organisation:
            entries.append(("decisions.index", "Decisions"))
            entries.append(("proposals.index", "Proposals"))
            entries.append(("reports.index", "Reports"))
        entries.append(("search.index", "Search"))
        if can_manage_units(person):
            entries.append(("data.index", "Data uploads"))
        entries.append(("frameworks.index", "Frameworks"))
        if can_manage_units(person) or can_manage_people(person):
            entries.append(("admin.index", "Administration"))
        elif can_read_outbox(person):
            entries.append(("admin.outbox", "Mail outbox"))
        elif can_read_audit(person):
            entries.append(("admin.audit", "Audit trail"))
        menu = tuple(
            (url_for(endpoint), label, endpoint.split(".")[0]) for endpoint, label in entries
        )
        # Role sets are few; the bound only guards against an unexpected variety.
        if len(menus) < 64:
            menus[key] = menu
    return menu


def _register_error_pages(app: Flask) -> None:
    def page(code: int, **context):
        return render_template(f"errors/{code}.html", **context), code

    @app.errorhandler(PermissionDenied)
    def permission_denied(error):
        return page(403, description=str(error))

    @app.errorhandler(NotFound)
    def not_found(error):
        return page(404, description=str(error))

    @app.errorhandler(Conflict)
    def conflict(error):
        return page(409, description=str(error))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return page(
            400,
            description="This form had expired or was not sent from this site, so nothing "
            "was saved. Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        from workflow_app.api import is_api_request

        if is_api_request():  # an unknown address or method under /api/v1: problem+json
            from workflow_app.api.problems import from_http_error

            return from_http_error(error)
        if error.code in (400, 403, 404, 409, 429):
            # Werkzeug's stock descriptions are for developers; show only our own.
            own = error.description if error.description != type(error).description else None
            extra = {}
            if error.code == 429:
                extra["retry_after"] = getattr(error, "retry_after", None)
            return page(error.code, description=own, **extra)
        return error

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    def database_unavailable(error: sa_exc.DBAPIError):
        return _database_unavailable(app, error)

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        db.session.rollback()
        error_id = secrets.token_hex(4)
        app.logger.exception("Unhandled error %s", error_id)
        return page(500, error_id=error_id)


def _database_unavailable(app: Flask, error: sa_exc.DBAPIError):
    """503 when the database cannot be reached or written (connection lost, PostgreSQL
    restarting, a read-only or full disk): the transaction is rolled back, so nothing the
    person sent was saved, and the page says so without touching the database again."""
    from flask import g
    from werkzeug.exceptions import ServiceUnavailable

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the rollback is best effort
        db.session.close()
    # The page must not load the signed-in person from the database that just failed.
    g._login_user = app.login_manager.anonymous_user()
    error_id = secrets.token_hex(4)
    unwritable = any(words in str(error.orig).lower() for words in UNWRITABLE_DATABASE)
    app.logger.error("Database unavailable %s: %s", error_id, error.orig)
    description = (
        "Escalate cannot save anything just now because its database cannot be written to "
        "(the disk is full or read-only)."
        if unwritable
        else "Escalate cannot reach its database just now."
    )
    from workflow_app.api import is_api_request

    if is_api_request():
        from workflow_app.api.problems import from_http_error

        return from_http_error(ServiceUnavailable(description))
    response = render_template("errors/503.html", description=description, error_id=error_id)
    return response, 503, {"Retry-After": "30"}
