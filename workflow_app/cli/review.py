"""``escalate review run --month YYYY-MM``: run the escalation review for a month."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext


def _month(value: str) -> date:
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise click.BadParameter("give the month as YYYY-MM, e.g. 2026-10") from None


@click.group("review")
def review_cli() -> None:
    """The monthly escalation review."""


@review_cli.command("run")
@click.option("--month", "month", required=True, help="The month to review, YYYY-MM.")
@with_appcontext
def run(month: str) -> None:
    """Evaluate every unit for MONTH and store the proposals (safe to re-run)."""
    from workflow_app.extensions import db
    from workflow_app.services.review import run_review

    period = _month(month)
    outcome = run_review(period)
    db.session.commit()
    click.echo(
        f"Reviewed {period:%B %Y}: {outcome.units} units, {len(outcome.created)} new proposals, "
        f"{len(outcome.superseded)} superseded, {outcome.unchanged} unchanged, "
        f"{len(outcome.flagged)} decided proposals flagged as revised."
    )
    for proposal in outcome.created:
        click.echo(
            f"  - {proposal.case.unit.code} {proposal.case.track}: "
            f"{proposal.from_level} -> {proposal.to_level} ({proposal.rule_id})"
        )
