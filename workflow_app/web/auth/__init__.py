"""Signing in and out, changing and resetting passwords."""

from __future__ import annotations

import time
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
from itsdangerous import BadSignature, URLSafeTimedSerializer

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


def _login_failure_limit() -> str:
    return current_app.config["LOGIN_ADDRESS_FAILURES"]


def _refused(response) -> bool:
    return response.status_code == 401


# --- trusted devices (docs/decisions/0030) -------------------------------------------------
# A browser in which someone has signed in keeps a signed cookie naming them (with a digest of
# their password hash, so a password change ends it). Such a browser may sign in while the
# account is locked by failures from elsewhere: an attacker cannot lock the owner out.

DEVICE_COOKIE = "escalate_device"
DEVICE_DAYS = 180
DEVICE_PEOPLE = 5  # a shared computer remembers the last few people


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="escalate-trusted-device")


def _trusted_devices() -> set[tuple[int, str]]:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return set()
    try:
        pairs = _device_serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
        return {(int(person_id), str(mark)) for person_id, mark in pairs}
    except (BadSignature, TypeError, ValueError):
        return set()


def _remember_device(response, person) -> None:
    mark = (person.id, accounts.device_fingerprint(person))
    pairs = [pair for pair in _trusted_devices() if pair[0] != person.id][: DEVICE_PEOPLE - 1]
    response.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps([list(mark), *map(list, pairs)]),
        max_age=DEVICE_DAYS * 86400,
        path=url_for("auth.login"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


# --- session lifetime: absolute from sign-in, and idle ------------------------------------
SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"
# The idle clock is written back at most this often, so most responses set no cookie.
SEEN_RESOLUTION_SECONDS = 60


@bp.before_app_request
def end_expired_sessions() -> None:
    """Sign out a session past its absolute lifetime (from sign-in) or idle for longer than
    ``SESSION_IDLE_MINUTES``, checked on the server, not just by the cookie's expiry."""
    if "_user_id" not in session or request.endpoint == "static":
        return
    now = time.time()
    config = current_app.config
    lifetime = config["PERMANENT_SESSION_LIFETIME"]
    lifetime = lifetime.total_seconds() if hasattr(lifetime, "total_seconds") else lifetime
    idle = (config.get("SESSION_IDLE_MINUTES") or 0) * 60
    signed_in_at = session.get(SIGNED_IN_AT)
    seen_at = session.get(SEEN_AT, signed_in_at)
    expired = not isinstance(signed_in_at, int | float) or now - signed_in_at > lifetime
    if not expired and idle and isinstance(seen_at, int | float) and now - seen_at > idle:
        expired = True
    if expired:
        logout_user()
        session.clear()
        flash("Your session has ended. Sign in again to carry on.", "info")
    elif idle and now - (seen_at or 0) > SEEN_RESOLUTION_SECONDS:
        session[SEEN_AT] = int(now)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
@limiter.limit(_login_failure_limit, methods=["POST"], deduct_when=_refused)
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
            person = accounts.authenticate(
                form.email.data, form.password.data, trusted=_trusted_devices()
            )
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
            session[SIGNED_IN_AT] = session[SEEN_AT] = int(time.time())
            response = redirect(target or url_for("home.index"))
            _remember_device(response, person)
            return response
    demo_users = current_app.config.get("DEMO_USERS") if current_app.config["DEMO_MODE"] else None
    return render_template(
        "auth/login.html", form=form, login_error=error, demo_users=demo_users
    ), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, so a link on another site cannot sign you out).

    The person's session epoch moves on, so a copy of the session cookie (kept by an
    attacker, or by a response in flight) is worthless afterwards (docs/decisions/0030).
    """
    if current_user.is_authenticated:
        with transaction():
            accounts.sign_out(current_user._get_current_object())
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
            signed_in_at = session.get(SIGNED_IN_AT)
            login_user(current_user._get_current_object())
            session[SIGNED_IN_AT] = signed_in_at
            flash("Your password has been changed. Other sessions have been signed out.", "success")
            response = redirect(url_for("home.index"))
            _remember_device(response, current_user)
            return response
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
