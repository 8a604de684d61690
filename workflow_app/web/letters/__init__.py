"""Issued letters: read them as issued (HTML) or download the PDF, if entitled."""

from __future__ import annotations

from flask import Blueprint, abort, make_response
from flask_login import current_user, login_required

from workflow_app.extensions import db
from workflow_app.models.letters import Letter
from workflow_app.permissions import can_view_unit

bp = Blueprint("letters", __name__, url_prefix="/letters")

# A letter is a standalone document with its own print styles; nothing else may load.
LETTER_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def get_visible_letter_or_404(letter_id: int) -> Letter:
    """A letter of a unit the person may see; 404 otherwise."""
    letter = db.session.get(Letter, letter_id)
    if letter is None or not can_view_unit(current_user, letter.case.unit):
        abort(404)
    return letter


@bp.route("/<int:letter_id>")
@login_required
def show(letter_id: int):
    """The letter exactly as issued (the stored, hashed HTML)."""
    letter = get_visible_letter_or_404(letter_id)
    response = make_response(letter.html)
    response.headers["Content-Security-Policy"] = LETTER_CSP
    response.headers["X-Letter-SHA256"] = letter.html_sha256
    return response


@bp.route("/<int:letter_id>.pdf")
@login_required
def pdf(letter_id: int):
    """The letter's PDF, once the job has made it."""
    letter = get_visible_letter_or_404(letter_id)
    if letter.pdf is None:
        abort(404, "The PDF of this letter is being prepared; try again in a minute.")
    response = make_response(letter.pdf)
    response.headers["Content-Type"] = "application/pdf"
    filename = letter.reference.replace("/", "-")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.pdf"'
    response.headers["X-Letter-SHA256"] = letter.pdf_sha256 or ""
    return response
