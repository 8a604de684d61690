"""The home page, shaped by the signed-in person's roles."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from workflow_app.models.roles import (
    CEO,
    COMMITTEE_MEMBER,
    DIRECTORATE_LEAD,
    EXECUTIVE_DIRECTOR,
    PERFORMANCE_TEAM,
    SYSTEM_ADMIN,
)
from workflow_app.services.register import register_for, tracks_in
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


@bp.route("/")
@login_required
def index():
    """The register of levels and open cases the person may see."""
    rows = register_for(current_user)
    view, heading = home_view_for(current_user.roles)
    open_cases = [(row, case) for row in rows for case in row.escalated_cases]
    chase = late_returns() if view in (PERFORMANCE_TEAM, CEO, EXECUTIVE_DIRECTOR) else []
    return render_template(
        "home/index.html",
        rows=rows,
        tracks=tracks_in(rows),
        open_cases=open_cases,
        view=view,
        heading=heading,
        late_returns=chase,
    )
