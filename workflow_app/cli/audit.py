"""``escalate audit verify``: check the audit trail's hash chain."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("audit")
def audit_cli() -> None:
    """Work with the tamper-evident audit trail."""


@audit_cli.command("verify")
@with_appcontext
def verify() -> None:
    """Recompute every link of the chain; exit 1 if any row was changed or removed."""
    from workflow_app.services.audit import verify_chain

    report = verify_chain()
    if report.ok:
        click.echo(f"OK: {report.checked} audit events, chain intact.")
        return
    click.echo(f"TAMPERED: {report.problem} (after {report.checked} good events)", err=True)
    raise SystemExit(1)
