"""The home page, shaped by the signed-in person's roles."""

from __future__ import annotations

from functools import cache

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
    level_counts_of,
    meetings_to_schedule,
    open_obligations,
    recent_letters,
    upcoming_meetings,
)
from workflow_app.services.register import (
    REGISTER_PAGE_SIZE,
    open_escalations_page,
    register_rows_page,
    register_summary,
    time_at_level,
)
from workflow_app.services.returns import late_returns
from workflow_app.web.fragments import cached, render_fragment

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
    person = current_user._get_current_object()
    view, heading = home_view_for(person.roles)
    lead = view == DIRECTORATE_LEAD
    # The register's parts are the same for everyone with the same view of the units, so
    # they are cached as rendered HTML until the data or the London day changes (0037).
    summary = cache(lambda: register_summary(person))
    counts = cached(person, now, "home.counts", lambda: _counts(summary()))
    return render_template(
        "home/index.html",
        units_total=counts["units"],
        open_total=counts["open"],
        open_escalations=cached(
            person, now, "home.open", lambda: _open_escalations(summary(), now)
        ),
        register_table=cached(
            person, now, "home.register", lambda: _register_table(person, summary(), now)
        ),
        register_rest=counts["units"] - counts["register_rows"],
        view=view,
        heading=heading,
        now=now,
        # A committee member who also leads a unit still writes that unit's plans.
        read_only=view == COMMITTEE_MEMBER and DIRECTORATE_LEAD not in person.roles,
        awaiting=cached(person, now, "home.awaiting", lambda: _awaiting(person, now), own=True),
        level_counts=counts["levels"] if not lead else [],
        diary=cached(
            person, now, "home.diary", lambda: _diary(person, view, now), view, minute=True
        ),
        reports_url=_reports_url() if view in (*OVERSIGHT_VIEWS, COMMITTEE_MEMBER) else None,
    )


def _counts(summary) -> dict:
    """The page's numbers: units, open escalations, units by level, register rows drawn."""
    return {
        "units": summary.total,
        "open": len(summary.escalated),
        "levels": level_counts_of(summary),
        "register_rows": min(summary.total, REGISTER_PAGE_SIZE),
    }


def _diary(person, view: str, now) -> str:
    """Obligations, late returns, meetings and letters. Every change to deadlines, meetings
    and letters is audited, and what is overdue or ahead moves with the minute (0037)."""
    oversight = view in OVERSIGHT_VIEWS
    lead = view == DIRECTORATE_LEAD
    return render_fragment(
        "home/_diary.html",
        view=view,
        now=now,
        late_returns=late_returns(now) if oversight else [],
        overdue=open_obligations(person, overdue_at=now) if not lead else [],
        obligations=open_obligations(person) if lead else [],
        meetings=upcoming_meetings(person, now),
        to_schedule=meetings_to_schedule(person) if oversight else [],
        letters=recent_letters(person) if lead else [],
    )


def _awaiting(person, now) -> str:
    # Pending decisions and signatures are audited, so the data version covers them.
    awaiting = decisions_awaiting(person, now)
    return render_fragment("home/_awaiting.html", awaiting=awaiting) if awaiting else ""


def _open_escalations(summary, now) -> str:
    page = open_escalations_page(summary)
    return render_fragment(
        "home/_open_escalations.html", page=page, now=now, time_at_level=time_at_level, home=True
    )


def _register_table(person, summary, now) -> str:
    page = register_rows_page(person, summary)
    return render_fragment(
        "home/_register.html",
        rows=page.items,
        tracks=summary.tracks(),
        now=now,
        time_at_level=time_at_level,
        caption="Current level of each unit on each track, and how long it has been there",
    )


def _reports_url() -> str | None:
    # The board reports live in their own blueprint; link to them once it is installed.
    if "reports.index" in current_app.view_functions:
        return url_for("reports.index")
    return None
