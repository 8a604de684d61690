"""``escalate data import FILE``: load a performance pack or finance return.

The same checks as the web upload; problems are printed by row and column, and nothing is
stored unless the file is valid or ``--only-valid`` is given.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

PROGRESS_FROM = 1000  # rows; smaller files load without a progress bar


@click.group("data")
def data_cli() -> None:
    """Load monthly performance and finance data."""


def _actor(email: str | None):
    import sqlalchemy as sa

    from workflow_app.extensions import db
    from workflow_app.models.org import Person, RoleGrant
    from workflow_app.models.roles import SYSTEM_ADMIN
    from workflow_app.permissions import can_manage_units

    if email:
        person = db.session.scalar(sa.select(Person).where(Person.email == email.strip().lower()))
        if person is None:
            raise click.UsageError(f"Nobody has the e-mail address {email}.")
    else:
        person = db.session.scalar(
            sa.select(Person)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role == SYSTEM_ADMIN, Person.is_enabled.is_(True))
            .order_by(Person.id)
            .limit(1)
        )
        if person is None:
            raise click.UsageError("There is no system administrator; give --as EMAIL.")
    if not can_manage_units(person) or not person.is_enabled:
        raise click.UsageError(
            f"{person.email} cannot load data: only the performance team or a system "
            "administrator can."
        )
    return person


@data_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--only-valid", is_flag=True, help="Load the valid rows and leave out the others.")
@click.option("--as", "email", metavar="EMAIL", help="Who is loading (default: first admin).")
@with_appcontext
def import_command(file: Path, only_valid: bool, email: str | None) -> None:
    """Check FILE (.csv or .xlsx) and load it; exit 1 with the problems if it has any."""
    from workflow_app.imports.batches import check_file, create_batch, load_batch
    from workflow_app.services.errors import ServiceError
    from workflow_app.services.unit_of_work import transaction

    actor = _actor(email)
    # The upload page's size limit, checked before reading, so a huge file is never loaded.
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    if limit and file.stat().st_size > limit:
        click.echo(
            f"Nothing was loaded. {file.name} is larger than {limit // (1024 * 1024)} MB; "
            "split it into smaller files (for example one per directorate).",
            err=True,
        )
        raise SystemExit(1)
    content = file.read_bytes()
    try:
        parsed = check_file(content, file.name)
    except ServiceError as error:
        click.echo(f"Nothing was loaded. {error}", err=True)
        raise SystemExit(1) from None
    problems = parsed.all_problems
    rows = len(parsed.rows)
    click.echo(f"{file.name}: {parsed.kind} ({parsed.layout}), {rows} rows with values.")
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems and not only_valid:
        click.echo(
            f"Nothing was loaded: {len(problems)} problem{'' if len(problems) == 1 else 's'}. "
            "Correct the file, or use --only-valid to load the valid rows.",
            err=True,
        )
        raise SystemExit(1)
    try:
        with transaction():
            batch = create_batch(actor, file.name, content)
            if rows >= PROGRESS_FROM:
                with click.progressbar(length=rows, label="Loading") as bar:
                    result = load_batch(actor, batch, only_valid=only_valid, progress=bar.update)
            else:
                result = load_batch(actor, batch, only_valid=only_valid)
            batch_id = batch.id
    except ServiceError as error:
        click.echo(f"Nothing was loaded. {error}", err=True)
        raise SystemExit(1) from None
    click.echo(
        f"Loaded: {result.created} new, {result.revised} revised, {result.unchanged} "
        f"unchanged, {result.rejected} rows rejected (batch {batch_id})."
    )
