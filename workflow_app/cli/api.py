"""``escalate api token create|revoke``: API tokens from the command line.

The same service as the administration page: only a system administrator may act (``--as``,
default the first enabled one), the secret is printed once and only its hash is kept, and
both actions are audited.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext


@click.group("api")
def api_cli() -> None:
    """The JSON API under /api/v1."""


@api_cli.group("token")
def token_cli() -> None:
    """Create and revoke API tokens."""


def _admin(email: str | None):
    import sqlalchemy as sa

    from workflow_app.extensions import db
    from workflow_app.models.org import Person, RoleGrant
    from workflow_app.models.roles import SYSTEM_ADMIN
    from workflow_app.permissions import can_manage_people

    query = sa.select(Person).where(Person.is_enabled.is_(True))
    if email:
        person = db.session.scalar(query.where(Person.email == email.strip().lower()))
    else:
        person = db.session.scalar(
            query.join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role == SYSTEM_ADMIN)
            .order_by(Person.id)
            .limit(1)
        )
    if person is None or not can_manage_people(person):
        raise click.UsageError("Give --as EMAIL of an enabled system administrator.")
    return person


@token_cli.command("create")
@click.option("--person", "person_email", required=True, metavar="EMAIL", help="Acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'BI nightly load'.")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="read or data:write (repeatable)."
)
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 365))
@click.option("--as", "admin_email", metavar="EMAIL", help="The system administrator acting.")
@with_appcontext
def create_command(person_email, name, scopes, days, admin_email) -> None:
    """Create a token and print its secret (shown this once only)."""
    import sqlalchemy as sa

    from workflow_app.clock import utcnow
    from workflow_app.extensions import db
    from workflow_app.models.org import Person
    from workflow_app.services.api_tokens import create_token
    from workflow_app.services.errors import ServiceError
    from workflow_app.services.unit_of_work import transaction

    actor = _admin(admin_email)
    person = db.session.scalar(
        sa.select(Person).where(Person.email == person_email.strip().lower())
    )
    if person is None:
        raise click.UsageError(f"Nobody has the e-mail address {person_email}.")
    try:
        with transaction():
            token, secret = create_token(
                actor,
                person=person,
                name=name,
                scopes=list(scopes),
                expires_at=utcnow() + timedelta(days=days),
            )
            token_id, expires = token.id, token.expires_at
    except ServiceError as error:
        click.echo(f"No token was created. {error}", err=True)
        raise SystemExit(1) from None
    click.echo(f"Token {token_id} for {person.email}, expires {expires:%Y-%m-%d %H:%M} UTC.")
    click.echo("Secret (shown once; send as 'Authorization: Bearer <secret>'):")
    click.echo(secret)


@token_cli.command("revoke")
@click.argument("token_id", type=int)
@click.option("--reason", required=True, help="Why it is revoked (kept in the audit trail).")
@click.option("--as", "admin_email", metavar="EMAIL", help="The system administrator acting.")
@with_appcontext
def revoke_command(token_id, reason, admin_email) -> None:
    """Revoke a token at once."""
    from workflow_app.extensions import db
    from workflow_app.models.api_tokens import ApiToken
    from workflow_app.services.api_tokens import revoke_token
    from workflow_app.services.errors import ServiceError
    from workflow_app.services.unit_of_work import transaction

    actor = _admin(admin_email)
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise click.UsageError(f"There is no API token {token_id}.")
    try:
        with transaction():
            revoke_token(actor, token, reason)
    except ServiceError as error:
        click.echo(f"Nothing changed. {error}", err=True)
        raise SystemExit(1) from None
    click.echo(f"Token {token_id} ('{token.name}') revoked.")
