"""The ``escalate`` command line: one click group per concern."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    """Attach every command group to ``app.cli`` (so ``escalate`` and ``flask`` both see them)."""
    from workflow_app.cli.api import api_cli
    from workflow_app.cli.audit import audit_cli
    from workflow_app.cli.data import data_cli
    from workflow_app.cli.demo import demo_command
    from workflow_app.cli.framework import framework_cli
    from workflow_app.cli.review import review_cli
    from workflow_app.cli.scheduler import scheduler_command

    app.cli.add_command(api_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(data_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(framework_cli)
    app.cli.add_command(review_cli)
    app.cli.add_command(scheduler_command)
