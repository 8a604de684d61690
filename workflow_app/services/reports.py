"""Monthly reports: the Executive Team's escalation overview and the report to the committees.

Seed 000 §7.7: "The Executive Team will receive a monthly overview report which will assist
in the determination of escalation"; §7.11: escalation levels and the actions to recover
performance are reported to the Executive Team and to the Delivery and Performance Committee
and the Quality and Safety Committee. Both reports hold, for one month: the units at each
level, the changes decided with their reasons, the plans and their status, the measures in
exception with their charts, and the finance position (what each kind adds or leaves out:
docs/decisions/0022).

:func:`build_report` reads the database once and returns plain JSON-able data (strings,
numbers, lists, dicts): the page, the PDF and the workbook are made from that data alone, so an
issued report renders without touching live data. :func:`issue_report` freezes it as
canonical JSON with its SHA-256, makes the PDF and XLSX from it and stores all three in one
transaction, audited; issuing again with nothing changed makes no new version
(docs/decisions/0023).

The report for month M covers M's month-end reporting: the measures and finance return of M,
and what was decided on it, which happens in the month after (the review runs on the 10th
working day): the *decision window* is the calendar month after M (London time), and the
report shows the position *as at* the end of that window, or now if it has not ended.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from state_machines import Framework, get_framework
from state_machines.plan_review import STATUS_TITLES
from workflow_app.canonical import canonical_json, sha256_hex
from workflow_app.charts import format_value
from workflow_app.clock import LONDON, as_utc, to_london, today_london, utcnow
from workflow_app.evaluation import evaluate_unit
from workflow_app.evaluation.rules import add_months, month_start
from workflow_app.evaluation.triggers import finance_thresholds
from workflow_app.extensions import db
from workflow_app.models.cases import (
    CONCERN_KINDS,
    CONCERN_SEVERITIES,
    Concern,
    Decision,
    EscalationCase,
    LevelChange,
)
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.plans import (
    PLAN_KINDS,
    UPDATE_STATUSES,
    PlanActionUpdate,
    RecoveryPlan,
)
from workflow_app.models.reports import REPORT_KINDS, IssuedReport
from workflow_app.models.roles import CEO, PERFORMANCE_TEAM, ROLE_TITLES
from workflow_app.services.audit import record_event
from workflow_app.services.errors import NotFound, require
from workflow_app.services.report_exports import (
    chart_description,
    report_pdf,
    report_xlsx,
)

#: How a month is written in addresses: 2026-10.
MONTH_ADDRESS = re.compile(r"(20\d\d|2100)-\d\d")
#: Version of the content layout; a template reading an older layout can tell.
SCHEMA = 1
#: Keys of the content that say *when* it was built, not *what* it says: two builds that
#: differ only in these are the same report (issuing twice makes no new version).
VOLATILE_KEYS = ("as_at", "as_at_text")
#: Committees of the Board that receive the report (seed 000 §7.11, §5.4): quality goes to the
#: Quality and Safety Committee, every other domain to the Delivery and Performance Committee.
QUALITY_COMMITTEE = "Quality and Safety Committee"
DELIVERY_COMMITTEE = "Delivery and Performance Committee"
QUALITY_DOMAINS = frozenset({"quality_safety_experience"})
DECISION_KIND_TITLES = {
    "escalate": "Escalation",
    "de_escalate": "De-escalation",
    "notice": "Formal notification",
    "earned_autonomy": "Earned autonomy",
}
OUTCOME_TITLES = {"approved": "Approved", "rejected": "Declined"}
UNIT_LABELS = {"percent": "%", "gbp": "£"}
CHART_MONTHS = 12
#: Plan statuses shown while the plan is live; a completed or withdrawn plan is shown only in
#: the report whose window it ended in.
ENDED_PLAN_STATUSES = ("completed", "withdrawn")


# --------------------------------------------------------------------------------------------
# Who may read and issue
# --------------------------------------------------------------------------------------------


def _signed_in(person: Person | None) -> bool:
    return person is not None and getattr(person, "is_authenticated", False)


def can_read_reports(person: Person | None) -> bool:
    """Organisation-wide roles (CEO, executive directors, performance team, committee members,
    system administrators) read the reports; a directorate lead does not (decision 0023)."""
    return _signed_in(person) and person.sees_whole_organisation


def can_issue_reports(person: Person | None) -> bool:
    """The performance team compiles the report and the CEO may issue it too."""
    return _signed_in(person) and person.has_role(PERFORMANCE_TEAM, CEO)


# --------------------------------------------------------------------------------------------
# Months and the window
# --------------------------------------------------------------------------------------------


def last_complete_month(today: date | None = None) -> date:
    """The latest month that has ended (London time)."""
    return add_months(month_start(today or today_london()), -1)


def parse_month(text: str) -> date:
    """``2026-10`` -> 1 October 2026.

    :raises NotFound: with a message saying why, for anything else or a month not yet ended.
    """
    try:
        if not MONTH_ADDRESS.fullmatch(text):
            raise ValueError(text)
        period = date(int(text[:4]), int(text[5:]), 1)
    except ValueError:
        raise NotFound(
            f"“{text[:20]}” is not a month: reports are addressed by year and month, "
            "for example 2026-10."
        ) from None
    if period > last_complete_month():
        raise NotFound(
            f"{period:%B %Y} has not ended yet: a month's report can be made once the month "
            "is over and its returns are in."
        )
    return period


def check_kind(kind: str) -> str:
    """The report kind, or :class:`NotFound` naming the kinds there are."""
    if kind not in REPORT_KINDS:
        raise NotFound(
            "There is no such report. The reports are: " + "; ".join(REPORT_KINDS.values()) + "."
        )
    return kind


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=LONDON).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """When the month's reporting was decided on: [starts, ends) in UTC; ``as_at`` is the
    position the report shows (the window's end, or now if it has not ended)."""

    month: date
    starts: datetime
    ends: datetime
    as_at: datetime


def window_for(month: date, now: datetime | None = None) -> Window:
    """The decision window of ``month``'s report: the calendar month after it."""
    now = as_utc(now or utcnow())
    starts = _london_midnight(add_months(month, 1))
    ends = _london_midnight(add_months(month, 2))
    return Window(month, starts, ends, min(now, ends))


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _day_text(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_london(value)
    return f"{value.day} {value:%B %Y}"


def _when_text(value: datetime | None) -> str:
    local = to_london(value)
    return f"{local.day} {local:%B %Y %H:%M}" if local is not None else ""


# --------------------------------------------------------------------------------------------
# Building the content
# --------------------------------------------------------------------------------------------


def _level_title(framework: Framework, level: str) -> str:
    try:
        return framework.level_title(level)
    except KeyError:
        return level


def _track_title(framework: Framework, track: str) -> str:
    try:
        found = framework.track_for(track)
    except KeyError:
        return track
    if found.per_measure:
        return f"{found.title}: {track.partition(':')[2]}"
    return found.title


def _rank(framework: Framework, track: str, level: str) -> int:
    try:
        return framework.track_for(track).levels.index(level)
    except (KeyError, ValueError):
        return 0


def _levels(units: list[Unit], as_at: datetime) -> dict[str, Any]:
    """Each unit's level on each track as at ``as_at`` (from the level history), and the
    count of units at each level."""
    cases = db.session.scalars(
        sa.select(EscalationCase).where(EscalationCase.unit_id.in_([u.id for u in units]))
    ).all()
    changes = db.session.scalars(
        sa.select(LevelChange)
        .where(LevelChange.case_id.in_([c.id for c in cases]), LevelChange.changed_at <= as_at)
        .order_by(LevelChange.changed_at, LevelChange.id)
    ).all()
    latest: dict[int, LevelChange] = {}
    for change in changes:
        latest[change.case_id] = change  # ordered: the last one wins
    by_unit: dict[int, list[EscalationCase]] = {}
    for case in cases:
        by_unit.setdefault(case.unit_id, []).append(case)
    rows, counts = [], {}
    for unit in units:
        framework = get_framework(unit.framework)
        tracks, headline = [], None
        for case in sorted(by_unit.get(unit.id, []), key=lambda c: c.track):
            change = latest.get(case.id)
            if case.framework != unit.framework or change is None:
                continue  # another framework's case, or opened after the report's date
            level = change.to_level
            entry = {
                "track": case.track,
                "track_title": _track_title(framework, case.track),
                "level": level,
                "level_title": _level_title(framework, level),
                "escalated": level != framework.initial_level(case.track),
                "since": change.changed_at.date().isoformat(),
                "since_text": _day_text(change.changed_at),
            }
            tracks.append(entry)
            key = (case.track, entry["track_title"], level, entry["level_title"])
            counts.setdefault(key, []).append(unit.code)
            if headline is None or _rank(framework, case.track, level) > _rank(
                framework, headline["track"], headline["level"]
            ):
                headline = entry
        rows.append(
            {
                "code": unit.code,
                "name": unit.name,
                "kind": unit.kind_title,
                "framework": unit.framework,
                "tracks": tracks,
                "headline_level": headline["level"] if headline else "",
                "headline_title": headline["level_title"] if headline else "",
                "escalated": any(t["escalated"] for t in tracks),
            }
        )
    summary = [
        {
            "track": track,
            "track_title": track_title,
            "level": level,
            "level_title": level_title,
            "count": len(codes),
            "units": sorted(codes),
        }
        for (track, track_title, level, level_title), codes in counts.items()
    ]
    summary.sort(key=lambda s: (s["track"], s["level"]))
    return {"summary": summary, "units": rows}


def _signers(decision: Decision) -> list[str]:
    out = []
    for signature in decision.signatures:
        role = ROLE_TITLES.get(signature.role, signature.role.replace("_", " "))
        text = f"{signature.person.name} ({role})"
        if signature.on_behalf_of is not None:
            text += f" as delegate of {signature.on_behalf_of.name}"
        out.append(text)
    return out


def _decision_row(decision: Decision) -> dict[str, Any]:
    unit = decision.case.unit
    framework = get_framework(decision.case.framework)
    return {
        "id": decision.id,
        "unit_code": unit.code,
        "unit_name": unit.name,
        "track_title": _track_title(framework, decision.case.track),
        "kind": decision.kind,
        "kind_title": DECISION_KIND_TITLES.get(decision.kind, decision.kind),
        "from_level": decision.from_level,
        "from_title": _level_title(framework, decision.from_level),
        "to_level": decision.to_level,
        "to_title": _level_title(framework, decision.to_level),
        "origin": decision.origin,
        "period": f"{decision.period:%Y-%m}" if decision.period else "",
        "period_text": f"{decision.period:%B %Y}" if decision.period else "",
        "reason": decision.reason,
        "note": decision.decision_note,
        "meeting": decision.meeting_reference,
        "proposed_at": _iso(decision.proposed_at),
        "proposed_text": _day_text(decision.proposed_at),
    }


def _changes(units: list[Unit], window: Window) -> list[dict[str, Any]]:
    """Decisions taken in the window, approved or declined, with their reasons."""
    ids = [u.id for u in units]
    decisions = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .where(
            EscalationCase.unit_id.in_(ids),
            Decision.status.in_(OUTCOME_TITLES),
            Decision.decided_at >= window.starts,
            Decision.decided_at < window.ends,
            Decision.decided_at <= window.as_at,
        )
        .order_by(Decision.decided_at, Decision.id)
    ).all()
    rows = []
    for decision in decisions:
        row = _decision_row(decision)
        row |= {
            "status": decision.status,
            "outcome_title": OUTCOME_TITLES[decision.status],
            "decided_at": _iso(decision.decided_at),
            "decided_text": _when_text(decision.decided_at),
            "signed_by": _signers(decision),
        }
        rows.append(row)
    return rows


def _pending(units: list[Unit], as_at: datetime) -> list[dict[str, Any]]:
    """Proposals awaiting decision at ``as_at``, with their evidence in words."""
    ids = [u.id for u in units]
    decisions = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .where(
            EscalationCase.unit_id.in_(ids),
            Decision.proposed_at <= as_at,
            sa.or_(Decision.decided_at.is_(None), Decision.decided_at > as_at),
        )
        .order_by(Decision.proposed_at, Decision.id)
    ).all()
    return [_decision_row(d) for d in decisions]


def _plan_status_at(plan: RecoveryPlan, as_at: datetime) -> tuple[str | None, datetime | None]:
    status, at = None, None
    for change in plan.status_changes:
        if as_utc(change.changed_at) <= as_at:
            status, at = change.to_status, change.changed_at
    return status, at


def _plans(units: list[Unit], month: date, window: Window) -> list[dict[str, Any]]:
    """Plans live at the report's date (and those that ended in its window), with their
    actions' latest monthly updates up to the report's month."""
    from workflow_app.services.plan_delivery import plan_trajectory

    ids = [u.id for u in units]
    plans = db.session.scalars(
        sa.select(RecoveryPlan)
        .where(RecoveryPlan.unit_id.in_(ids), RecoveryPlan.created_at <= window.as_at)
        .order_by(RecoveryPlan.unit_id, RecoveryPlan.id)
    ).all()
    codes = {u.id: u.code for u in units}
    rows = []
    for plan in plans:
        status, changed_at = _plan_status_at(plan, window.as_at)
        if status is None:
            continue
        if status in ENDED_PLAN_STATUSES and as_utc(changed_at) < window.starts:
            continue
        framework = get_framework(plan.case.framework)
        updates = {
            u.action_id: u
            for u in db.session.scalars(
                sa.select(PlanActionUpdate)
                .where(
                    PlanActionUpdate.action_id.in_([a.id for a in plan.actions]),
                    PlanActionUpdate.period <= month,
                    PlanActionUpdate.updated_at <= window.as_at,
                )
                .order_by(PlanActionUpdate.period)
            )
        }
        actions, counts = [], {key: 0 for key in (*UPDATE_STATUSES, "none")}
        for number, action in enumerate(plan.actions, start=1):
            update = updates.get(action.id)
            counts[update.status if update else "none"] += 1
            actions.append(
                {
                    "number": number,
                    "description": action.description,
                    "measure": action.measure.name if action.measure else "",
                    "owner": action.owner.name if action.owner else "",
                    "due": action.due_on.isoformat() if action.due_on else "",
                    "due_text": _day_text(action.due_on),
                    "delivered_text": _day_text(action.delivered_on)
                    if action.delivered_on and action.delivered_on <= window.as_at.date()
                    else "",
                    "status": update.status if update else "",
                    "status_title": UPDATE_STATUSES.get(update.status, "") if update else "",
                    "update_month": f"{update.period:%B %Y}" if update else "",
                    "narrative": update.narrative if update else "",
                }
            )
        approved = plan.approved_at is not None and as_utc(plan.approved_at) <= window.as_at
        rows.append(
            {
                "id": plan.id,
                "unit_code": codes[plan.unit_id],
                "unit_name": plan.unit.name,
                "title": plan.title,
                "kind_title": PLAN_KINDS.get(plan.kind, plan.kind),
                "track_title": _track_title(framework, plan.case.track),
                "status": status,
                "status_title": STATUS_TITLES.get(status, status),
                "status_since_text": _day_text(changed_at),
                "approved_text": _day_text(plan.approved_at) if approved else "",
                "risk_level": (plan.risk_level or "").capitalize(),
                "trajectory": plan_trajectory(plan, months=(), until=month).summary
                if approved
                else "Not yet approved: judged against its trajectory once approved.",
                "actions": actions,
                "action_counts": counts,
            }
        )
    return rows


def _unit_label(unit_of_measure: str) -> str:
    return UNIT_LABELS.get(unit_of_measure, unit_of_measure)


def _value_text(value: float | None, unit_of_measure: str) -> str:
    if value is None:
        return "no data"
    label = _unit_label(unit_of_measure)
    return format_value(float(value), "" if label == "count" else label)


def _exceptions(
    units: list[Unit], month: date, domains: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Measures red in ``month`` (each with its chart data), measures amber (listed), and
    data-quality gaps (measures with no actual for the month)."""
    from workflow_app.services.review import unit_input

    red, amber, missing = [], [], []
    for unit in units:
        data = unit_input(unit, month)
        evaluation = evaluate_unit(data, month, get_framework(unit.framework))
        results = {m.code: m for m in evaluation.measures}
        for measure in data.measures:
            result = results.get(measure.code)
            if result is None:
                continue
            rag = result.rag_by_period.get(month)
            point = next((p for p in measure.series if p.period == month), None)
            actual = point.actual if point else None
            if actual is None:
                missing.append(
                    {"unit_code": unit.code, "unit_name": unit.name, "measure": measure.name}
                )
                continue
            if rag not in ("red", "amber"):
                continue
            count = result.month_count
            row = {
                "unit_code": unit.code,
                "unit_name": unit.name,
                "measure_code": measure.code,
                "measure_name": measure.name,
                "domain": measure.domain,
                "domain_name": domains.get(measure.domain, measure.domain),
                "committee": QUALITY_COMMITTEE
                if measure.domain in QUALITY_DOMAINS
                else DELIVERY_COMMITTEE,
                "rag": rag,
                "actual": actual,
                "actual_text": _value_text(actual, measure.unit_of_measure),
                "target_text": _value_text(measure.target, measure.unit_of_measure),
                "trajectory_text": _value_text(point.trajectory, measure.unit_of_measure)
                if point and point.trajectory is not None
                else "",
                "months_under": count.consecutive_under,
                "month_count_status": count.status.replace("_", " "),
            }
            series = measure.series[-CHART_MONTHS:]
            spc = result.spc
            chart = {
                "title": measure.name,
                "unit_label": _unit_label(measure.unit_of_measure),
                "points": [[p.period.isoformat(), p.actual, p.trajectory] for p in series],
                "target": measure.target,
                "direction": measure.direction,
                "bands": [spc.mean, spc.ucl, spc.lcl] if spc is not None else None,
                "special": {
                    p.isoformat(): s.kind
                    for s in (spc.signals if spc is not None else ())
                    for p in s.periods
                    if p >= series[0].period
                },
                "rag": {
                    p.isoformat(): r
                    for p, r in result.rag_by_period.items()
                    if p >= series[0].period and r
                },
            }
            # The words say what the chart shows: the same months, limits and signals.
            row["description"] = chart_description(chart)
            if rag == "red":
                row["chart"] = chart
                red.append(row)
            else:
                amber.append(row)
    return red, amber, missing


def _finance(units: list[Unit], month: date) -> dict[str, Any]:
    """Each unit's finance return for ``month`` (latest revision), against the thresholds of
    its framework's finance trigger (iqpf: YTD over £0.5m, forecast over £1m)."""
    positions: dict[int, FinancePosition] = {}
    for row in db.session.scalars(
        sa.select(FinancePosition)
        .where(FinancePosition.unit_id.in_([u.id for u in units]), FinancePosition.period == month)
        .order_by(FinancePosition.revision)
    ):
        positions[row.unit_id] = row
    rows, missing = [], []
    totals = {"budget": 0.0, "ytd_variance": 0.0, "forecast_variance": 0.0}
    for unit in units:
        position = positions.get(unit.id)
        if position is None:
            missing.append({"unit_code": unit.code, "unit_name": unit.name})
            continue
        limits = finance_thresholds(get_framework(unit.framework))
        ytd, forecast = float(position.ytd_variance), float(position.forecast_variance)
        budget = float(position.budget) if position.budget is not None else None
        ytd_limit, forecast_limit = limits.get("ytd_overspend"), limits.get("forecast_overspend")
        rows.append(
            {
                "unit_code": unit.code,
                "unit_name": unit.name,
                "budget": budget,
                "ytd_variance": ytd,
                "forecast_variance": forecast,
                "budget_text": format_value(budget, "£") if budget is not None else "",
                "ytd_text": format_value(ytd, "£"),
                "forecast_text": format_value(forecast, "£"),
                "ytd_threshold": ytd_limit,
                "forecast_threshold": forecast_limit,
                "ytd_breach": ytd_limit is not None and ytd > ytd_limit,
                "forecast_breach": forecast_limit is not None and forecast > forecast_limit,
                "revision": position.revision,
            }
        )
        totals["budget"] += budget or 0.0
        totals["ytd_variance"] += ytd
        totals["forecast_variance"] += forecast
    return {
        "rows": rows,
        "missing": missing,
        "totals": totals
        | {
            "ytd_text": format_value(totals["ytd_variance"], "£"),
            "forecast_text": format_value(totals["forecast_variance"], "£"),
        },
    }


def _concerns(units: list[Unit], month: date, domains: dict[str, str]) -> list[dict[str, Any]]:
    """Quality and safety matters (inspections, never events, external reviews...) that
    occurred in ``month`` (seed 000 §7.7)."""
    ends = add_months(month, 1)
    rows = db.session.scalars(
        sa.select(Concern)
        .where(Concern.unit_id.in_([u.id for u in units]))
        .order_by(Concern.occurred_on, Concern.id)
    ).all()
    out = []
    for concern in rows:
        occurred = concern.occurred_on or to_london(concern.recorded_at).date()
        if not month <= occurred < ends:
            continue
        out.append(
            {
                "unit_code": concern.unit.code,
                "unit_name": concern.unit.name,
                "domain_name": concern.domain.name,
                "kind_title": CONCERN_KINDS.get(concern.kind, concern.kind),
                "severity": CONCERN_SEVERITIES.get(concern.severity, concern.severity),
                "summary": concern.summary,
                "occurred_text": _day_text(occurred),
            }
        )
    return out


def build_report(kind: str, month: date, *, now: datetime | None = None) -> dict[str, Any]:
    """The content of ``kind``'s report for ``month`` from the current data, as JSON-able
    data (see the module docstring for what "current" means for a past month)."""
    check_kind(kind)
    month = month_start(month)
    window = window_for(month, now)
    units = list(
        db.session.scalars(sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code))
    )
    domains = {d.code: d.name for d in db.session.scalars(sa.select(Domain))}
    red, amber, missing_actuals = _exceptions(units, month, domains)
    finance = _finance(units, month)
    content: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "title": REPORT_KINDS[kind],
        "organisation": current_app.config.get("ORGANISATION_NAME", ""),
        "month": f"{month:%Y-%m}",
        "month_title": f"{month:%B %Y}",
        "window_text": f"{_day_text(window.starts)} to "
        f"{_day_text(add_months(month, 2) - timedelta(days=1))}",
        "as_at": _iso(window.as_at),
        "as_at_text": f"the end of {_day_text(add_months(month, 2) - timedelta(days=1))}"
        if window.as_at == window.ends
        else _when_text(window.as_at),
        "levels": _levels(units, window.as_at),
        "changes": _changes(units, window),
        "plans": _plans(units, month, window),
        "exceptions": red,
        "watch": amber,
        "finance": finance,
        "concerns": _concerns(units, month, domains),
    }
    if kind == "executive_overview":
        # The Executive Team determines escalation (§7.7): what awaits its decision, and
        # which returns are missing, are its business; the committees see decided matters.
        content["proposals"] = _pending(units, window.as_at)
        content["missing_returns"] = {
            "finance": finance["missing"],
            "measures": missing_actuals,
        }
    else:
        # Each exception is shown under the committee its domain reports to (§7.11).
        content["committees"] = [DELIVERY_COMMITTEE, QUALITY_COMMITTEE]
    return content


# --------------------------------------------------------------------------------------------
# Freezing and issuing
# --------------------------------------------------------------------------------------------


def substance(content: dict[str, Any]) -> dict[str, Any]:
    """The content without the keys that only say when it was built."""
    return {k: v for k, v in content.items() if k not in VOLATILE_KEYS}


def stored_content(report: IssuedReport) -> dict[str, Any]:
    """The issued content, exactly as frozen."""
    return json.loads(report.content)


def hash_matches(report: IssuedReport) -> bool:
    """True when the stored content still has the hash recorded when it was issued."""
    return sha256_hex(report.content) == report.content_sha256


def versions_of(kind: str, month: date) -> list[IssuedReport]:
    """Every issued version of one report, newest first."""
    return list(
        db.session.scalars(
            sa.select(IssuedReport)
            .where(IssuedReport.kind == kind, IssuedReport.month == month)
            .order_by(IssuedReport.version.desc())
        )
    )


@dataclass(frozen=True)
class IssueOutcome:
    """What issuing did: ``created`` False means nothing changed since ``report`` was issued."""

    report: IssuedReport
    created: bool


def issue_report(
    person: Person, kind: str, month: date, *, now: datetime | None = None
) -> IssueOutcome:
    """Freeze ``kind``'s report for ``month``: canonical JSON + SHA-256, PDF and XLSX made
    from that JSON, stored as the next version and audited. Only flushes; the caller commits.

    When the newest issued version says the same (ignoring when it was built), no version is
    made and that one is returned with ``created=False``.
    """
    require(
        can_issue_reports(person),
        "Only the performance team or the Chief Executive can issue a monthly report.",
    )
    check_kind(kind)
    month = month_start(month)
    content = build_report(kind, month, now=now)
    previous = versions_of(kind, month)
    if previous and substance(stored_content(previous[0])) == substance(content):
        return IssueOutcome(previous[0], created=False)
    text = canonical_json(content)
    digest = sha256_hex(text)
    version = previous[0].version + 1 if previous else 1
    issued_at = as_utc(now or utcnow())
    meta = {
        "version": version,
        "sha256": digest,
        "issued_at_text": _when_text(issued_at),
        "issued_by": person.name,
    }
    report = IssuedReport(
        kind=kind,
        month=month,
        version=version,
        content=text,
        content_sha256=digest,
        pdf=report_pdf(content, meta),
        xlsx=report_xlsx(content, meta),
        issued_at=issued_at,
        issued_by_id=person.id,
    )
    db.session.add(report)
    db.session.flush()
    record_event(
        "report.issued",
        object_type="issued_report",
        object_id=report.id,
        summary=f"Issued {REPORT_KINDS[kind].lower()}, {month:%B %Y}, version {version}",
        actor=person,
        details={
            "kind": kind,
            "month": f"{month:%Y-%m}",
            "version": version,
            "content_sha256": digest,
            "pdf_sha256": hashlib.sha256(report.pdf).hexdigest(),
            "xlsx_sha256": hashlib.sha256(report.xlsx).hexdigest(),
        },
    )
    return IssueOutcome(report, created=True)


# --------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------


def report_months(limit: int = 18) -> list[date]:
    """Months a report can be made for, newest first: those with any return or any issued
    report, up to the last complete month."""
    latest = last_complete_month()
    months = set(
        db.session.scalars(sa.select(MonthlyActual.period).distinct().join(Measure))
    ) | set(db.session.scalars(sa.select(FinancePosition.period).distinct()))
    months |= set(db.session.scalars(sa.select(IssuedReport.month).distinct()))
    months = {month_start(m) for m in months if m <= latest}
    return sorted(months, reverse=True)[:limit] if months else [latest]


def issued_by_month(months: list[date]) -> dict[tuple[str, date], list[IssuedReport]]:
    """Issued versions of each (kind, month), newest first."""
    out: dict[tuple[str, date], list[IssuedReport]] = {}
    if not months:
        return out
    for report in db.session.scalars(
        sa.select(IssuedReport)
        .where(IssuedReport.month.in_(months))
        .order_by(IssuedReport.version.desc())
    ):
        out.setdefault((report.kind, report.month), []).append(report)
    return out
