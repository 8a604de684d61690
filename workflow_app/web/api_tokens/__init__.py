"""Administration of API tokens: list, create (the secret shown once), revoke with a reason.

Only a system administrator may use these pages (403 for everyone else, as for people and
roles). The secret is shown on the page that answers the creating POST and never again: it
is not flashed, redirected with or stored, only its SHA-256.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from workflow_app.clock import LONDON, today_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.api_tokens import API_SCOPES, ApiToken
from workflow_app.models.org import Person
from workflow_app.permissions import can_manage_people
from workflow_app.services import api_tokens
from workflow_app.services.errors import ServiceError
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import optional_int

bp = Blueprint("api_tokens", __name__, url_prefix="/admin/api-tokens")
DEFAULT_DAYS = 90


class CreateTokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired("Enter a name that says what the token is for"),
            Length(max=120, message="The name must be 120 characters or fewer"),
        ],
        description="What it is for, e.g. BI nightly load",
    )
    person_id = SelectField(
        "Acts as",
        coerce=optional_int,
        validators=[DataRequired("Choose the person the token acts as")],
        description="The token sees only what this person may see.",
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=[(name, f"{name}: {text}") for name, text in API_SCOPES.items()],
        validators=[DataRequired("Choose at least one scope")],
    )
    expires_on = DateField(
        "Expires at the end of",
        validators=[DataRequired("Enter the expiry date, e.g. 31/03/2027")],
        description=f"At most {api_tokens.MAX_DAYS} days from today.",
    )


class RevokeTokenForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        validators=[
            DataRequired("Enter the reason for revoking the token"),
            Length(max=500, message="The reason must be 500 characters or fewer"),
        ],
    )


def _require() -> None:
    if not can_manage_people(current_user):
        abort(403, "Only a system administrator can manage API tokens.")


def _me() -> Person:
    return current_user._get_current_object()


def _create_form() -> CreateTokenForm:
    form = CreateTokenForm()
    people = db.session.scalars(
        sa.select(Person).where(Person.is_enabled.is_(True)).order_by(Person.name)
    )
    form.person_id.choices = [("", "Choose a person")] + [
        (p.id, f"{p.name} ({p.email})") for p in people
    ]
    return form


def _expires_at(day) -> datetime:
    """The end of ``day`` in London, capped at the longest a token may last."""
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), LONDON)
    return min(end_of_day, utcnow() + timedelta(days=api_tokens.MAX_DAYS))


@bp.route("/")
@login_required
def index():
    """Every token: whose, which scopes, until when, last used, revoked."""
    _require()
    return render_template(
        "admin/api_tokens.html",
        tokens=api_tokens.all_tokens(),
        state=api_tokens.token_state,
        scopes=API_SCOPES,
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Create a token; the answer shows its secret once."""
    _require()
    form = _create_form()
    if not form.is_submitted():
        form.expires_on.data = today_london() + timedelta(days=DEFAULT_DAYS)
    if form.validate_on_submit():
        today = today_london()
        if form.expires_on.data <= today:
            form.expires_on.errors.append("The expiry must be after today")
        elif form.expires_on.data > today + timedelta(days=api_tokens.MAX_DAYS):
            form.expires_on.errors.append(
                f"A token can last at most {api_tokens.MAX_DAYS} days; choose an earlier date"
            )
        else:
            person = db.session.get(Person, form.person_id.data)
            if person is None:
                form.person_id.errors.append("Choose the person the token acts as")
            else:
                try:
                    with transaction():
                        token, secret = api_tokens.create_token(
                            _me(),
                            person=person,
                            name=form.name.data,
                            scopes=form.scopes.data,
                            expires_at=_expires_at(form.expires_on.data),
                        )
                except ServiceError as problem:
                    form.name.errors.append(str(problem))
                else:
                    return render_template(
                        "admin/api_tokens_created.html", token=token, secret=secret
                    )
    return render_template("admin/api_tokens_new.html", form=form)


@bp.route("/<int:token_id>")
@login_required
def show(token_id: int):
    """One token, with the form to revoke it."""
    _require()
    token = db.get_or_404(ApiToken, token_id)
    return render_template(
        "admin/api_tokens_show.html",
        token=token,
        state=api_tokens.token_state(token),
        scopes=API_SCOPES,
        form=RevokeTokenForm(),
    )


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):
    """Revoke a token at once, with the reason (audited)."""
    _require()
    token = db.get_or_404(ApiToken, token_id)
    form = RevokeTokenForm()
    if not form.validate_on_submit():
        return (
            render_template(
                "admin/api_tokens_show.html",
                token=token,
                state=api_tokens.token_state(token),
                scopes=API_SCOPES,
                form=form,
            ),
            400 if form.csrf_token.errors else 200,
        )
    try:
        with transaction():
            api_tokens.revoke_token(_me(), token, form.reason.data)
    except ServiceError as problem:
        flash(str(problem), "error")
    else:
        flash(f"The token '{token.name}' was revoked. It stops working at once.", "success")
    return redirect(url_for("api_tokens.show", token_id=token_id))
