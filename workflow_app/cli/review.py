"""``escalate review run --month YYYY-MM [--through YYYY-MM]``: run the escalation review
for a month, or for each month of a run (a backfill)."""

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
@click.option(
    "--through",
    "through",
    default=None,
    help="Review every month from --month up to this one, YYYY-MM (a backfill).",
)
@with_appcontext
def run(month: str, through: str | None) -> None:
    """Evaluate every unit for MONTH (or each month from MONTH through THROUGH, in order)
    and store the proposals. Each month is committed on its own; safe to re-run."""
    from workflow_app.extensions import db
    from workflow_app.services.review import review_months

    first = _month(month)
    last = _month(through) if through else first
    if last < first:
        raise click.BadParameter("must not be before --month", param_hint="--through")
    periods = []
    while first <= last:
        periods.append(first)
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    # One span read for all the months (review_months); a commit after each month, so a
    # failure part-way keeps the months already reviewed.
    for outcome in review_months(periods):
        db.session.commit()
        _report(outcome)


def _report(outcome) -> None:
    period = outcome.period
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
