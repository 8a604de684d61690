"""Uploading the month's performance pack and finance return: upload, preview, load."""

from __future__ import annotations

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import HiddenField

from workflow_app.extensions import db
from workflow_app.imports import batches
from workflow_app.imports.export import (
    COLUMN_NOTES,
    TEMPLATES,
    rejects_csv,
    template_csv,
    template_xlsx,
)
from workflow_app.imports.load import FileHasProblems
from workflow_app.models.imports import ImportBatch
from workflow_app.permissions import can_manage_units
from workflow_app.services.errors import Conflict, ServiceError
from workflow_app.services.unit_of_work import transaction

bp = Blueprint("data", __name__, url_prefix="/data")
RECENT = 50
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class UploadForm(FlaskForm):
    file = FileField("Performance pack or finance return")


class LoadForm(FlaskForm):
    mode = HiddenField()


def _require() -> None:
    if not can_manage_units(current_user):
        abort(403, "Only the performance team or a system administrator can load data.")


def _limit_text() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit:,} bytes"


def _upload_page(form: UploadForm, status: int = 200):
    return (
        render_template(
            "data/upload.html",
            form=form,
            templates=TEMPLATES,
            notes=COLUMN_NOTES,
            limit=_limit_text(),
        ),
        status,
    )


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    """An upload over MAX_CONTENT_LENGTH: say so on the upload page; nothing is stored."""
    if not can_manage_units(current_user):
        # Not abort(403): an exception raised inside an error handler becomes a 500.
        return _error
    form = UploadForm(meta={"csrf": False}, formdata=None)
    form.file.errors = [
        f"The file is larger than {_limit_text()}, so it was not uploaded. Split it into "
        "smaller files (for example one per directorate) or remove unused sheets."
    ]
    return _upload_page(form, 413)


@bp.route("/")
@login_required
def index():
    """Recent uploads and what became of them."""
    _require()
    recent = db.session.scalars(
        sa.select(ImportBatch).order_by(ImportBatch.id.desc()).limit(RECENT)
    ).all()
    return render_template("data/index.html", batches=recent, templates=TEMPLATES)


@bp.route("/upload", methods=["GET", "POST"])
@login_required
def upload():
    """Upload a file; it is checked and shown for preview, nothing is stored yet."""
    _require()
    form = UploadForm()
    if form.validate_on_submit():
        upload_file = form.file.data
        filename = (getattr(upload_file, "filename", "") or "").strip()
        if not filename:
            form.file.errors.append("Choose the file to upload")
            return _upload_page(form, 200)
        content = upload_file.read()
        try:
            with transaction():
                batch = batches.create_batch(current_user, filename, content)
        except ServiceError as problem:
            form.file.errors.append(str(problem))
            return _upload_page(form, 200)
        return redirect(url_for("data.preview", batch_id=batch.id))
    return _upload_page(form)


@bp.route("/batches/<int:batch_id>")
@login_required
def preview(batch_id: int):
    """Every problem by row and column; buttons to load all rows or only the valid ones."""
    _require()
    batch = db.get_or_404(ImportBatch, batch_id)
    return render_template(
        "data/preview.html",
        batch=batch,
        problems=batch.problems,
        valid=batches.valid_row_count(batch),
        earlier=batches.earlier_loads(batch),
        form=LoadForm(),
    )


@bp.route("/batches/<int:batch_id>/load", methods=["POST"])
@login_required
def load(batch_id: int):
    """Load the batch: all rows (only when it has no problems) or only the valid rows."""
    _require()
    batch = db.get_or_404(ImportBatch, batch_id)
    form = LoadForm()
    if not form.validate_on_submit():
        abort(400)
    mode = form.mode.data
    if mode not in ("all", "valid", "discard"):
        abort(400, "Choose whether to load all rows, only the valid rows, or discard.")
    try:
        with transaction():
            if mode == "discard":
                batches.discard_batch(current_user, batch)
            else:
                result = batches.load_batch(current_user, batch, only_valid=mode == "valid")
    except Conflict:
        raise
    except FileHasProblems as problem:
        flash(str(problem), "error")
        return redirect(url_for("data.preview", batch_id=batch_id))
    except ServiceError as problem:
        flash(str(problem), "error")
        return redirect(url_for("data.preview", batch_id=batch_id))
    if mode == "discard":
        flash(f"{batch.filename} was discarded. Nothing was stored.", "success")
        return redirect(url_for("data.index"))
    flash(
        f"{batch.filename} loaded: {result.created} new values, {result.revised} revised, "
        f"{result.unchanged} unchanged, {result.rejected} rows rejected.",
        "success",
    )
    return redirect(url_for("data.preview", batch_id=batch_id))


@bp.route("/batches/<int:batch_id>/rejects.csv")
@login_required
def rejects(batch_id: int):
    """The problems of a batch as a CSV file (cells neutralised against formulas)."""
    _require()
    batch = db.get_or_404(ImportBatch, batch_id)
    return Response(
        rejects_csv(batch.problems),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rejects-{batch.id}.csv"'},
    )


@bp.route("/template/<name>.<ext>")
@login_required
def template(name: str, ext: str):
    """A template with the current units and measures, as CSV or XLSX."""
    _require()
    if name not in TEMPLATES or ext not in ("csv", "xlsx"):
        abort(404)
    if ext == "csv":
        body, mimetype = template_csv(name), "text/csv"
    else:
        body, mimetype = template_xlsx(name), XLSX_TYPE
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="escalate-{name}.{ext}"'},
    )
