"""The home page, shaped by the signed-in person's roles."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user, login_required

from workflow_app.clock import utcnow
from workflow_app.models.roles import (
    CEO,
    COMMITTEE_MEMBER,
    DIRECTORATE_LEAD,
    EXECUTIVE_DIRECTOR,
    PERFORMANCE_TEAM,
    SYSTEM_ADMIN,
)
from workflow_app.services.dashboard import (
    decisions_awaiting,
    meetings_to_schedule,
    open_obligations,
    recent_letters,
    units_by_level,
    upcoming_meetings,
)
from workflow_app.services.register import (
    register_for,
    register_page,
    time_at_level,
    tracks_in,
)
from workflow_app.services.returns import late_returns

bp = Blueprint("home", __name__)

# The first matching role decides the page's heading and focus.
HOME_VIEWS = (
    (CEO, "Chief Executive overview"),
    (EXECUTIVE_DIRECTOR, "Executive overview"),
    (PERFORMANCE_TEAM, "Performance team overview"),
    (SYSTEM_ADMIN, "System administration"),
    (COMMITTEE_MEMBER, "Committee assurance"),
    (DIRECTORATE_LEAD, "Your units"),
)


def home_view_for(roles: set[str]) -> tuple[str, str]:
    """Return (role, heading) of the home page a person with ``roles`` sees."""
    for role, heading in HOME_VIEWS:
        if role in roles:
            return role, heading
    return "", "Your home page"


#: Roles that run the organisation's escalations: decisions, overdue work, the diary.
OVERSIGHT_VIEWS = (CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM)


@bp.route("/")
@login_required
def index():
    """The person's home page: what awaits them, then the register of levels they may see.

    The CEO, executives and the performance team see decisions awaiting them, units by
    level, overdue obligations and the meetings ahead; a directorate lead sees their units
    with their obligations, meetings and letters; a committee member sees the register and
    the diary, read-only.
    """
    now = utcnow()
    rows = register_for(current_user)
    view, heading = home_view_for(current_user.roles)
    open_cases = [(row, case) for row in rows for case in row.escalated_cases]
    oversight = view in OVERSIGHT_VIEWS
    lead = view == DIRECTORATE_LEAD
    register = register_page(rows)
    return render_template(
        "home/index.html",
        rows=register.rows,
        register=register,
        tracks=tracks_in(rows),
        open_cases=open_cases,
        view=view,
        heading=heading,
        now=now,
        time_at_level=time_at_level,
        # A committee member who also leads a unit still writes that unit's plans.
        read_only=view == COMMITTEE_MEMBER and DIRECTORATE_LEAD not in current_user.roles,
        late_returns=late_returns(now) if oversight else [],
        awaiting=decisions_awaiting(current_user, now),
        level_counts=units_by_level(rows) if not lead else [],
        overdue=open_obligations(current_user, overdue_at=now) if not lead else [],
        obligations=open_obligations(current_user) if lead else [],
        meetings=upcoming_meetings(current_user, now),
        to_schedule=meetings_to_schedule(current_user) if oversight else [],
        letters=recent_letters(current_user) if lead else [],
        reports_url=_reports_url() if view in (*OVERSIGHT_VIEWS, COMMITTEE_MEMBER) else None,
    )


def _reports_url() -> str | None:
    # The board reports live in their own blueprint; link to them once it is installed.
    if "reports.index" in current_app.view_functions:
        return url_for("reports.index")
    return None
