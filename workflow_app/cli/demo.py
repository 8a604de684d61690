"""``escalate demo``: migrate, load the demo health board, and serve it."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--serve/--no-serve", default=True, help="Start the web server afterwards.")
@with_appcontext
def demo_command(host: str, port: int, serve: bool) -> None:
    """Create or upgrade the database, load the demo data once, print log-ins, and serve."""
    from flask_migrate import upgrade

    from workflow_app.demo import demo_logins, load_demo
    from workflow_app.extensions import db
    from workflow_app.models.org import Person
    from workflow_app.scheduling.scheduler import start_embedded_scheduler

    app = current_app._get_current_object()
    click.echo(f"Database: {app.config['SQLALCHEMY_DATABASE_URI']}")
    upgrade()
    if db.session.scalar(sa.select(sa.func.count(Person.id))) == 0:
        click.echo("Loading the demo health board ...")
        load_demo()
        db.session.commit()
    else:
        click.echo("Demo data already loaded (delete the database file to start again).")
    logins = demo_logins()
    app.config["DEMO_MODE"] = True
    app.config["DEMO_USERS"] = [
        {"email": x.email, "password": x.password, "role": x.role_title} for x in logins
    ]
    click.echo("\nSign in as any of these demo users:\n")
    width = max(len(x.email) for x in logins)
    for login in logins:
        click.echo(f"  {login.role_title:<22} {login.email:<{width}}  {login.password}")
    mail = app.config["MAIL_SERVER"] or "none: e-mails stay in the outbox (Administration)"
    click.echo(f"\nMail server: {mail}")
    if not serve:
        return
    if app.config["SCHEDULER_MODE"] == "embedded":
        if start_embedded_scheduler(app) is not None:
            click.echo("Scheduler: running in this process (sweep every minute)")
        else:
            click.echo("Scheduler: another process on this machine is running it")
    click.echo(f"\nOpen http://{host}:{port}/ (Ctrl+C to stop)\n")
    # Flask refuses app.run() inside a CLI command; serve with Werkzeug directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)
