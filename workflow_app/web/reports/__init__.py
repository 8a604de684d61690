"""Monthly reports: the index, a live preview, issuing, and the archived versions as issued.

Who may read: organisation-wide roles; a directorate lead gets 403 (the reports cover every
unit, docs/decisions/0023). Who may issue: the performance team and the CEO.
"""

from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user, login_required

from workflow_app.clock import to_london
from workflow_app.extensions import db
from workflow_app.models.reports import REPORT_KINDS, IssuedReport
from workflow_app.services.errors import Conflict, PermissionDenied
from workflow_app.services.report_exports import XLSX_MIME, download_name, report_chart
from workflow_app.services.reports import (
    build_report,
    can_issue_reports,
    can_read_reports,
    check_kind,
    hash_matches,
    issue_report,
    issued_by_month,
    parse_month,
    report_months,
    stored_content,
    versions_of,
)
from workflow_app.services.unit_of_work import transaction

bp = Blueprint("reports", __name__, url_prefix="/reports")

READ_REFUSED = (
    "Monthly reports cover every unit, so they are for the Chief Executive, executive "
    "directors, the performance team, committee members and system administrators."
)


@bp.before_request
@login_required
def _readers_only():
    if not can_read_reports(current_user):
        raise PermissionDenied(READ_REFUSED)


@bp.route("")
def index():
    """Each report kind by month, with the versions issued, who issued them and when."""
    months = report_months()
    return render_template(
        "reports/index.html", kinds=REPORT_KINDS, months=months, issued=issued_by_month(months)
    )


@bp.route("/<kind>/<month>")
def show(kind: str, month: str):
    """The report on the current data, clearly marked as not issued."""
    period = parse_month(month)
    check_kind(kind)
    report = build_report(kind, period)
    return render_template(
        "reports/show.html",
        report=report,
        chart=report_chart,
        versions=versions_of(kind, period),
        can_issue=can_issue_reports(current_user),
    )


@bp.route("/<kind>/<month>/issue", methods=["POST"])
def issue(kind: str, month: str):
    """Freeze the report as its next version; nothing new if nothing changed."""
    period = parse_month(month)
    check_kind(kind)
    try:
        with transaction():
            outcome = issue_report(current_user, kind, period)
    except Conflict:
        # Two clicks (or two people) at once: the other request issued this version.
        latest = versions_of(kind, period)
        if not latest:
            raise
        flash(
            f"This report was issued by another request at the same moment as version "
            f"{latest[0].version}; nothing more was issued.",
            "info",
        )
        return redirect(url_for("reports.issued", report_id=latest[0].id))
    report = outcome.report
    if outcome.created:
        flash(f"Issued as version {report.version}.", "success")
    else:
        issued_at = to_london(report.issued_at)
        flash(
            f"Nothing has changed since version {report.version} was issued on "
            f"{issued_at:%d %B %Y at %H:%M}, so no new version was made.",
            "info",
        )
    return redirect(url_for("reports.issued", report_id=report.id))


def _issued_or_404(report_id: int) -> IssuedReport:
    report = db.session.get(IssuedReport, report_id)
    if report is None:
        abort(404, "There is no issued report with this number.")
    return report


@bp.route("/issued/<int:report_id>")
def issued(report_id: int):
    """An issued version exactly as issued: its frozen content and its hash."""
    report = _issued_or_404(report_id)
    latest = versions_of(report.kind, report.month)[0]
    return render_template(
        "reports/issued.html",
        issued=report,
        report=stored_content(report),
        chart=report_chart,
        intact=hash_matches(report),
        latest=latest.id == report.id,
    )


def _download(report: IssuedReport, data: bytes | None, mimetype: str, extension: str):
    if data is None:
        abort(404, "This file was not stored with the report.")
    name = download_name(stored_content(report), report.version, extension)
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name)


@bp.route("/issued/<int:report_id>.pdf")
def issued_pdf(report_id: int):
    """The PDF made when the version was issued."""
    report = _issued_or_404(report_id)
    return _download(report, report.pdf, "application/pdf", "pdf")


@bp.route("/issued/<int:report_id>.xlsx")
def issued_xlsx(report_id: int):
    """The workbook made when the version was issued."""
    report = _issued_or_404(report_id)
    return _download(report, report.xlsx, XLSX_MIME, "xlsx")
