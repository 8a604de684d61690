"""Read endpoints: units, levels, measures (with monthly values), cases, plans, meetings.

Each answers only what the token's person may see (``permissions.visible_units_filter``,
the meeting and plan rules of their services); anything else is 404, exactly like an id
that does not exist (docs/decisions/0006).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import jsonify

from state_machines import get_framework
from workflow_app.api.auth import api_person, require_scope
from workflow_app.api.pagination import MAX_ID, choice_arg, int_arg, page_response, paginate
from workflow_app.api.problems import ApiProblem
from workflow_app.clock import as_utc
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.meetings import MEETING_STATUSES, Meeting, MeetingInvitee
from workflow_app.models.org import Person, Unit
from workflow_app.models.plans import PLAN_STATUSES, PlanAction, RecoveryPlan
from workflow_app.permissions import visible_units_filter
from workflow_app.services.register import RegisterRow

# --- values --------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _month(value: date | None) -> str | None:
    return f"{value:%Y-%m}" if value is not None else None


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _person(person: Person | None) -> dict | None:
    return {"id": person.id, "name": person.name} if person is not None else None


def _not_found(what: str) -> ApiProblem:
    return ApiProblem(404, f"There is no {what} with this id that this token may see.")


def _visible_or_404(model, object_id: int, query: sa.Select, what: str):
    """The object, if the person may see it (``query`` already filters on visibility)."""
    if object_id > MAX_ID:
        raise _not_found(what)
    found = db.session.scalar(query.where(model.id == object_id))
    if found is None:
        raise _not_found(what)
    return found


# --- units and levels ----------------------------------------------------------------------


def _units_query(person: Person) -> sa.Select:
    return sa.select(Unit).where(visible_units_filter(person))


def unit_json(unit: Unit) -> dict:
    return {
        "id": unit.id,
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind,
        "framework": unit.framework,
        "parent_id": unit.parent_id,
        "is_active": unit.is_active,
        "accountable_executive": _person(unit.accountable_executive),
        "lead": _person(unit.lead),
        "budget_holder": _person(unit.budget_holder),
        "earned_autonomy_since": _time(unit.earned_autonomy_since),
    }


def levels_json(row: RegisterRow) -> dict:
    headline = row.headline_level
    escalated = {case.id for case in row.escalated_cases}
    return {
        "unit_id": row.unit.id,
        "unit_code": row.unit.code,
        "framework": row.framework.name,
        "headline": (
            {"track": headline.track, "level": headline.level, "case_id": headline.id}
            if headline is not None
            else None
        ),
        "cases": [
            {
                "case_id": case.id,
                "track": case.track,
                "level": case.level,
                "level_since": _time(case.level_since),
                "escalated": case.id in escalated,
            }
            for case in sorted(row.cases.values(), key=lambda c: c.track)
        ],
    }


def register_endpoints(bp) -> None:
    """Attach the read endpoints to the API blueprint."""

    @bp.get("/units")
    @require_scope("read")
    def list_units():
        """Units the token's person may see, by id."""
        query = _units_query(api_person())
        unit_filter = choice_arg("active", ("true", "false"))
        if unit_filter is not None:
            query = query.where(Unit.is_active.is_(unit_filter == "true"))
        return page_response(paginate(query, Unit.id), unit_json)

    @bp.get("/units/<int:unit_id>")
    @require_scope("read")
    def get_unit(unit_id: int):
        """One unit."""
        return jsonify(
            unit_json(_visible_or_404(Unit, unit_id, _units_query(api_person()), "unit"))
        )

    @bp.get("/levels")
    @require_scope("read")
    def list_levels():
        """Each visible unit's level on every track and its headline level (the register)."""
        page = paginate(_units_query(api_person()).where(Unit.is_active.is_(True)), Unit.id)
        rows = {unit.id: RegisterRow(unit, get_framework(unit.framework)) for unit in page.items}
        if rows:
            for case in db.session.scalars(
                sa.select(EscalationCase).where(EscalationCase.unit_id.in_(rows))
            ):
                row = rows[case.unit_id]
                if case.framework == row.framework.name:
                    row.cases[case.track] = case
        page.items = list(rows.values())
        return page_response(page, levels_json)

    # --- measures --------------------------------------------------------------------------

    def measures_query(person: Person) -> sa.Select:
        return (
            sa.select(Measure)
            .join(Unit, Unit.id == Measure.unit_id)
            .where(visible_units_filter(person))
            .options(so.joinedload(Measure.domain), so.joinedload(Measure.unit))
        )

    def measure_json(measure: Measure) -> dict:
        return {
            "id": measure.id,
            "unit_id": measure.unit_id,
            "unit_code": measure.unit.code,
            "code": measure.code,
            "name": measure.name,
            "domain": {"code": measure.domain.code, "name": measure.domain.name},
            "kind": measure.kind,
            "target": _number(measure.target),
            "direction": measure.direction,
            "tolerance": _number(measure.tolerance),
            "unit_of_measure": measure.unit_of_measure,
            "owner_id": measure.owner_id,
            "is_active": measure.is_active,
        }

    @bp.get("/measures")
    @require_scope("read")
    def list_measures():
        """Measures of the visible units (``unit_id`` narrows to one unit)."""
        query = measures_query(api_person())
        unit_id = int_arg("unit_id")
        if unit_id is not None:
            query = query.where(Measure.unit_id == unit_id)
        return page_response(paginate(query, Measure.id), measure_json)

    @bp.get("/measures/<int:measure_id>")
    @require_scope("read")
    def get_measure(measure_id: int):
        """One measure with its target."""
        query = measures_query(api_person())
        return jsonify(measure_json(_visible_or_404(Measure, measure_id, query, "measure")))

    @bp.get("/measures/<int:measure_id>/values")
    @require_scope("read")
    def measure_values(measure_id: int):
        """Month by month: the current actual (latest revision) and the trajectory."""
        measure = _visible_or_404(Measure, measure_id, measures_query(api_person()), "measure")
        months: dict[date, dict] = {}
        latest = (
            sa.select(MonthlyActual.period, sa.func.max(MonthlyActual.revision).label("rev"))
            .where(MonthlyActual.measure_id == measure.id)
            .group_by(MonthlyActual.period)
            .subquery()
        )
        actuals = db.session.scalars(
            sa.select(MonthlyActual)
            .join(
                latest,
                sa.and_(
                    MonthlyActual.period == latest.c.period,
                    MonthlyActual.revision == latest.c.rev,
                ),
            )
            .where(MonthlyActual.measure_id == measure.id)
        )
        for actual in actuals:
            months.setdefault(actual.period, {})["actual"] = actual
        for point in db.session.scalars(
            sa.select(TrajectoryValue).where(TrajectoryValue.measure_id == measure.id)
        ):
            months.setdefault(point.period, {})["trajectory"] = point
        values = []
        for period in sorted(months):
            actual = months[period].get("actual")
            trajectory = months[period].get("trajectory")
            values.append(
                {
                    "month": _month(period),
                    "actual": _number(actual.value) if actual else None,
                    "revision": actual.revision if actual else None,
                    "recorded_at": _time(actual.recorded_at) if actual else None,
                    "trajectory": _number(trajectory.value) if trajectory else None,
                }
            )
        return jsonify(
            {"measure_id": measure.id, "target": _number(measure.target), "values": values}
        )

    # --- cases -----------------------------------------------------------------------------

    def cases_query(person: Person) -> sa.Select:
        return (
            sa.select(EscalationCase)
            .join(Unit, Unit.id == EscalationCase.unit_id)
            .where(visible_units_filter(person))
        )

    def case_json(case: EscalationCase, *, history: bool = False) -> dict:
        body = {
            "id": case.id,
            "unit_id": case.unit_id,
            "framework": case.framework,
            "track": case.track,
            "level": case.level,
            "level_since": _time(case.level_since),
            "opened_at": _time(case.opened_at),
        }
        if history:
            body["history"] = [
                {
                    "from_level": change.from_level,
                    "to_level": change.to_level,
                    "changed_at": _time(change.changed_at),
                    "decision_id": change.decision_id,
                }
                for change in case.level_changes
            ]
        return body

    @bp.get("/cases")
    @require_scope("read")
    def list_cases():
        """Escalation cases (one per unit and track) of the visible units."""
        query = cases_query(api_person())
        unit_id = int_arg("unit_id")
        if unit_id is not None:
            query = query.where(EscalationCase.unit_id == unit_id)
        return page_response(paginate(query, EscalationCase.id), case_json)

    @bp.get("/cases/<int:case_id>")
    @require_scope("read")
    def get_case(case_id: int):
        """One case with its level history."""
        case = _visible_or_404(EscalationCase, case_id, cases_query(api_person()), "case")
        return jsonify(case_json(case, history=True))

    # --- plans -----------------------------------------------------------------------------

    def plans_query(person: Person) -> sa.Select:
        # As services.plan_delivery.can_view_plan: the unit's viewers and the action owners.
        owned = sa.select(PlanAction.plan_id).where(PlanAction.owner_id == person.id)
        return (
            sa.select(RecoveryPlan)
            .join(Unit, Unit.id == RecoveryPlan.unit_id)
            .where(sa.or_(visible_units_filter(person), RecoveryPlan.id.in_(owned)))
        )

    def plan_json(plan: RecoveryPlan, *, detail: bool = False) -> dict:
        body = {
            "id": plan.id,
            "case_id": plan.case_id,
            "unit_id": plan.unit_id,
            "kind": plan.kind,
            "title": plan.title,
            "status": plan.status,
            "risk_level": plan.risk_level,
            "current_version": plan.current_version,
            "submitted_at": _time(plan.submitted_at),
            "approved_at": _time(plan.approved_at),
            "review_period_ends_on": _day(plan.review_period_ends_on),
            "completed_at": _time(plan.completed_at),
            "updated_at": _time(plan.updated_at),
        }
        if detail:
            body["summary"] = plan.summary
            body["support_requested"] = plan.support_requested
            body["actions"] = [
                {
                    "id": action.id,
                    "position": action.position,
                    "description": action.description,
                    "measure_id": action.measure_id,
                    "expected_effect": action.expected_effect,
                    "owner": _person(action.owner),
                    "due_on": _day(action.due_on),
                    "delivered_on": _day(action.delivered_on),
                    "latest_update": (
                        {
                            "month": _month(action.updates[-1].period),
                            "status": action.updates[-1].status,
                            "narrative": action.updates[-1].narrative,
                        }
                        if action.updates
                        else None
                    ),
                }
                for action in plan.actions
            ]
            body["trajectory"] = [
                {
                    "measure_id": point.measure_id,
                    "month": _month(point.period),
                    "planned_value": _number(point.planned_value),
                }
                for point in plan.trajectory
            ]
        return body

    @bp.get("/plans")
    @require_scope("read")
    def list_plans():
        """Recovery, improvement and action plans (filter by ``unit_id`` and ``status``)."""
        query = plans_query(api_person())
        unit_id = int_arg("unit_id")
        if unit_id is not None:
            query = query.where(RecoveryPlan.unit_id == unit_id)
        status = choice_arg("status", PLAN_STATUSES)
        if status is not None:
            query = query.where(RecoveryPlan.status == status)
        return page_response(paginate(query, RecoveryPlan.id), plan_json)

    @bp.get("/plans/<int:plan_id>")
    @require_scope("read")
    def get_plan(plan_id: int):
        """One plan with its SMART actions, their latest updates and its trajectory."""
        plan = _visible_or_404(RecoveryPlan, plan_id, plans_query(api_person()), "plan")
        return jsonify(plan_json(plan, detail=True))

    # --- meetings --------------------------------------------------------------------------

    def meetings_query(person: Person) -> sa.Select:
        # As services.meetings.can_view_meeting: the unit's viewers and the invitees.
        invited = sa.select(MeetingInvitee.meeting_id).where(MeetingInvitee.person_id == person.id)
        return (
            sa.select(Meeting)
            .join(Unit, Unit.id == Meeting.unit_id)
            .where(sa.or_(visible_units_filter(person), Meeting.id.in_(invited)))
        )

    def meeting_json(meeting: Meeting, *, detail: bool = False) -> dict:
        body = {
            "id": meeting.id,
            "kind": meeting.kind,
            "title": meeting.title,
            "unit_id": meeting.unit_id,
            "case_id": meeting.case_id,
            "status": meeting.status,
            "chair": _person(meeting.chair),
            "requested_at": _time(meeting.requested_at),
            "hold_by": _day(meeting.hold_by),
            "starts_at": _time(meeting.starts_at),
            "ends_at": _time(meeting.ends_at),
            "location": meeting.location,
        }
        if detail:
            body["cancelled_reason"] = meeting.cancelled_reason
            body["action_plan_id"] = meeting.action_plan_id
            body["invitees"] = [
                {
                    "person": _person(invitee.person),
                    "role": invitee.role,
                    "attendance": invitee.attendance,
                }
                for invitee in meeting.invitees
            ]
        return body

    @bp.get("/meetings")
    @require_scope("read")
    def list_meetings():
        """Meetings about the visible units and those the person is invited to."""
        query = meetings_query(api_person())
        unit_id = int_arg("unit_id")
        if unit_id is not None:
            query = query.where(Meeting.unit_id == unit_id)
        status = choice_arg("status", MEETING_STATUSES)
        if status is not None:
            query = query.where(Meeting.status == status)
        return page_response(paginate(query, Meeting.id), meeting_json)

    @bp.get("/meetings/<int:meeting_id>")
    @require_scope("read")
    def get_meeting(meeting_id: int):
        """One meeting with its invitees and their attendance."""
        meeting = _visible_or_404(Meeting, meeting_id, meetings_query(api_person()), "meeting")
        return jsonify(meeting_json(meeting, detail=True))
