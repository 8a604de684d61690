"""Level-driven cadence: the recurring obligations a case's level brings.

Framework A: Level 2a and 3 bring monthly updates to the Executive Committee (and, at 3,
to the committee), 2b monthly financial reporting (seed 000, 7.8 table). Framework B: the
CEO/Executive review every 6, 3, 2 or 1 months by level, and the monthly oversight
touchpoint (seed 004, 6.3). Each occurrence is a deadline; changing level cancels the
occurrences of the old level that are still to come and plans the new level's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from state_machines import Duration, get_framework, parse_duration
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.services.deadlines import calendar_for, cancel_deadline, create_deadline

CADENCE_KIND_PREFIX = "cadence:"
# How many future occurrences are kept planned; a daily top-up plans the next ones.
HORIZON = 2

TITLES = {
    "executive_committee_update": "Monthly update to the Executive Committee",
    "committee_update": "Monthly update to the relevant committee",
    "financial_reporting": "Monthly financial report on the agreed action plan",
    "ceo_executive_review": "CEO / Executive review",
    "oversight_touchpoint": "Oversight touchpoint",
    "ceo_progress_meeting": "Progress meeting with the CEO",
}


@dataclass
class CadencePlan:
    """What re-planning a case's cadence did."""

    created: list[Deadline]
    cancelled: list[Deadline]


def cadence_of(case: EscalationCase) -> dict[str, Duration]:
    """The cadence the case's current level asks for: name -> interval.

    Where the framework offers alternatives (e.g. weekly or fortnightly) the first is used
    until someone chooses otherwise.
    """
    framework = get_framework(case.framework)
    level = framework.levels.get(case.level)
    result = {}
    for name, every in (level.cadence if level else {}).items():
        first = every[0] if isinstance(every, list | tuple) else every
        result[name] = parse_duration(first)
    # Progress meetings with the CEO, when chosen as a Level 3 support option (decision 7).
    options = chosen_support_options(case)
    if "ceo_progress_meetings" in options:
        every = (options["ceo_progress_meetings"] or {}).get("every", "2 weeks")
        result["ceo_progress_meeting"] = parse_duration(every)
    return result


def chosen_support_options(case: EscalationCase) -> dict:
    """Support options chosen by the decision that brought the case to its current level."""
    import json

    from workflow_app.models.cases import Decision

    decision = db.session.scalar(
        sa.select(Decision)
        .where(
            Decision.case_id == case.id,
            Decision.status == "approved",
            Decision.to_level == case.level,
        )
        .order_by(Decision.decided_at.desc())
        .limit(1)
    )
    if decision is None or not decision.support_options:
        return {}
    return json.loads(decision.support_options)


def _level_prefix(case: EscalationCase) -> str:
    return f"{CADENCE_KIND_PREFIX}{case.id}:{case.level}:{case.level_since:%Y%m%d%H%M}:"


def replan_cadence(case: EscalationCase, *, now: datetime | None = None) -> CadencePlan:
    """Cancel what the case's level no longer asks for and plan the next occurrences.

    Idempotent: running it again (e.g. the daily top-up) creates nothing twice.
    """
    now = now or utcnow()
    prefix = _level_prefix(case)
    live = db.session.scalars(
        sa.select(Deadline).where(
            Deadline.case_id == case.id,
            Deadline.kind.like(f"{CADENCE_KIND_PREFIX}%"),
            Deadline.status.in_(("open", "paused")),
        )
    ).all()
    cancelled = []
    title = get_framework(case.framework).level_title(case.level)
    for deadline in live:
        if not deadline.dedupe_key.startswith(prefix):
            cancel_deadline(deadline, f"level changed to {title}")
            cancelled.append(deadline)
    created = []
    calendar = calendar_for(case.framework)
    # Every occurrence already planned at this level (any status), in one query.
    planned = set(
        db.session.scalars(
            sa.select(Deadline.dedupe_key).where(
                Deadline.case_id == case.id,
                Deadline.dedupe_key.startswith(prefix, autoescape=True),
            )
        )
    )
    for name, every in cadence_of(case).items():
        planned_ahead = 0
        occurrence = 0
        while planned_ahead < HORIZON and occurrence < 1000:
            occurrence += 1
            due = calendar.due_after(
                case.level_since, Duration(every.amount * occurrence, every.unit)
            )
            if due <= now:
                continue
            planned_ahead += 1
            key = f"{prefix}{name}:{occurrence}"
            if key in planned:
                continue
            deadline = create_deadline(
                dedupe_key=key,
                kind=f"{CADENCE_KIND_PREFIX}{name}",
                title=TITLES.get(name, name.replace("_", " ").capitalize()),
                unit=case.unit,
                framework=case.framework,
                case=case,
                due_at=due,
                now=now,
                known_new=True,
            )
            planned.add(key)
            created.append(deadline)
    # The occurrences that are meetings, requested (docs/decisions/0019).
    from workflow_app.services.meeting_cadence import plan_cadence_meetings

    plan_cadence_meetings(case, now=now)
    return CadencePlan(created, cancelled)


def top_up_all_cadences(now: datetime | None = None) -> int:
    """Plan the next occurrences for every case whose level has a cadence."""
    now = now or utcnow()
    created = 0
    for case in db.session.scalars(sa.select(EscalationCase)).all():
        if cadence_of(case):
            created += len(replan_cadence(case, now=now).created)
    # Every unit's cadence meetings, including the base cadence (docs/decisions/0019).
    from workflow_app.services.meeting_cadence import plan_all_cadence_meetings

    plan_all_cadence_meetings(now)
    return created
