"""Entry point of the ``escalate`` console script."""

from __future__ import annotations

from flask.cli import FlaskGroup


def _create_app():
    from workflow_app import create_app

    return create_app()


cli = FlaskGroup(
    name="escalate",
    create_app=_create_app,
    help="Escalate: escalation lifecycles for NHS performance frameworks.",
)
