"""Signing in and out, changing and resetting passwords."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from workflow_app.extensions import db, limiter
from workflow_app.services import accounts
from workflow_app.services.errors import NotFound, ServiceError
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import ChangePasswordForm, LoginForm, ResetPasswordForm, SettingsForm

bp = Blueprint("auth", __name__, url_prefix="/auth")


def safe_next(target: str | None) -> str | None:
    """Return ``target`` only if it is a path on this site (no open redirect via ``next=``)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    """The sign-in page; on success a new session starts (no session fixation)."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    error = None
    if form.validate_on_submit():
        try:
            person = accounts.authenticate(form.email.data, form.password.data)
        except accounts.LoginRefused as refused:
            # Commit even though sign-in failed: the failure counter and lock must stick.
            db.session.commit()
            error = str(refused)
        else:
            db.session.commit()
            target = safe_next(form.next.data)
            session.clear()  # drop everything from before sign-in
            login_user(person)
            session.permanent = True
            return redirect(target or url_for("home.index"))
    demo_users = current_app.config.get("DEMO_USERS") if current_app.config["DEMO_MODE"] else None
    return render_template(
        "auth/login.html", form=form, login_error=error, demo_users=demo_users
    ), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, so a link on another site cannot sign you out)."""
    logout_user()
    session.clear()
    flash("You have signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            with transaction():
                accounts.change_password(
                    current_user, form.current_password.data, form.new_password.data
                )
        except ServiceError as problem:
            form.new_password.errors.append(str(problem))
        else:
            # Keep this session alive under the new epoch (the real object, not the proxy).
            login_user(current_user._get_current_object())
            flash("Your password has been changed. Other sessions have been signed out.", "success")
            return redirect(url_for("home.index"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Set a new password with a one-time link from an administrator."""
    try:
        reset_token = accounts.find_reset_token(token)
    except NotFound as expired:
        return render_template("auth/reset_expired.html", message=str(expired)), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            with transaction():
                accounts.reset_password(token, form.new_password.data)
        except NotFound as expired:
            return render_template("auth/reset_expired.html", message=str(expired)), 404
        except ServiceError as problem:
            form.new_password.errors.append(str(problem))
        else:
            flash("Your new password is set. Sign in with it now.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, person=reset_token.person)


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings():
    """Your settings: how reminders reach you; a link to change your password."""
    form = SettingsForm(obj=current_user)
    if form.validate_on_submit():
        with transaction():
            accounts.set_notification_mode(current_user, form.notification_mode.data)
        flash("Your settings are saved.", "success")
        return redirect(url_for("auth.settings"))
    return render_template("auth/settings.html", form=form)
