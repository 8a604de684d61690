"""Read models for measure pages: a unit's evaluated measures and the units x domains scorecard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from state_machines import get_framework
from workflow_app.charts import ChartBands, SeriesPoint, description_of, measure_chart
from workflow_app.clock import today_london
from workflow_app.evaluation import MeasureEvaluation, MeasureInput, evaluate_unit
from workflow_app.extensions import db
from workflow_app.models.measures import Measure, MonthlyActual
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.services.review import unit_input

CHART_MONTHS = 18
RAG_ORDER = {"red": 3, "amber": 2, "green": 1, None: 0}
UNIT_LABELS = {"percent": "%", "gbp": "£"}


def latest_period(units: list[Unit]) -> date:
    """The latest month with any actual for these units, else last month."""
    ids = [u.id for u in units]
    latest = None
    if ids:
        latest = db.session.scalar(
            sa.select(sa.func.max(MonthlyActual.period))
            .join(Measure, Measure.id == MonthlyActual.measure_id)
            .where(Measure.unit_id.in_(ids))
        )
    if latest is None:
        today = today_london()
        latest = (
            date(today.year - 1, 12, 1)
            if today.month == 1
            else date(today.year, today.month - 1, 1)
        )
    return latest


@dataclass
class MeasureView:
    """One measure as a page shows it: its evaluation, chart and text alternative."""

    measure: MeasureInput
    evaluation: MeasureEvaluation
    chart: str
    description: str

    @property
    def latest_rag(self):
        if not self.evaluation.rag_by_period:
            return None
        return self.evaluation.rag_by_period[max(self.evaluation.rag_by_period)]


@dataclass(frozen=True)
class Correction:
    """A revised actual: the month, the value it replaced, the new value, who and when."""

    period: date
    old: float
    new: float
    revision: int
    by: str
    at: object


def corrections(unit: Unit) -> dict[str, list[Correction]]:
    """Every revised actual of the unit's measures, by measure code (old values stay visible)."""
    rows = db.session.scalars(
        sa.select(MonthlyActual)
        .join(Measure, Measure.id == MonthlyActual.measure_id)
        .where(Measure.unit_id == unit.id)
        .order_by(MonthlyActual.measure_id, MonthlyActual.period, MonthlyActual.revision)
    ).all()
    result: dict[str, list[Correction]] = {}
    previous: dict[tuple[int, date], MonthlyActual] = {}
    for row in rows:
        key = (row.measure_id, row.period)
        before = previous.get(key)
        if before is not None:
            who = db.session.get(Person, row.recorded_by_id) if row.recorded_by_id else None
            result.setdefault(row.measure.code, []).append(
                Correction(
                    row.period,
                    float(before.value),
                    float(row.value),
                    row.revision,
                    who.name if who else "an import",
                    row.recorded_at,
                )
            )
        previous[key] = row
    return result


def measure_views(unit: Unit, period: date | None = None) -> tuple[date, list[MeasureView]]:
    """Evaluate ``unit`` for ``period`` (default: its latest month) and chart each measure."""
    period = period or latest_period([unit])
    data = unit_input(unit, period)
    evaluation = evaluate_unit(data, period, get_framework(unit.framework))
    by_code = {m.code: m for m in evaluation.measures}
    views = []
    for measure in data.measures:
        result = by_code.get(measure.code)
        if result is None:
            continue
        points = [
            SeriesPoint(p.period, p.actual, p.trajectory) for p in measure.series[-CHART_MONTHS:]
        ]
        bands = special = None
        if result.spc is not None:
            bands = ChartBands(result.spc.mean, result.spc.ucl, result.spc.lcl)
            special = {p: s.kind for s in result.spc.signals for p in s.periods}
        unit_label = UNIT_LABELS.get(measure.unit_of_measure, measure.unit_of_measure)
        common = dict(
            title=measure.name,
            unit_label=unit_label,
            points=points,
            target=measure.target,
            direction=measure.direction,
            bands=bands,
            special_cause=special,
        )
        views.append(
            MeasureView(
                measure=measure,
                evaluation=result,
                chart=measure_chart(**common, rag=result.rag_by_period),
                description=description_of(**common),
            )
        )
    return period, views


@dataclass
class ScoreCell:
    """One unit's measures in one domain, in the latest month."""

    rag_counts: dict[str, int] = field(default_factory=dict)
    worst: str | None = None
    improving: int = 0
    worsening: int = 0

    @property
    def total(self) -> int:
        return sum(self.rag_counts.values())

    @property
    def trend(self) -> str:
        if self.improving > self.worsening:
            return "improving"
        if self.worsening > self.improving:
            return "worsening"
        return "steady"


def scorecard(
    units: list[Unit],
) -> tuple[date, list[Domain], list[tuple[Unit, dict[str, ScoreCell]]]]:
    """RAG by unit and domain for the latest month, with a month-on-month trend."""
    period = latest_period(units)
    domains = db.session.scalars(sa.select(Domain).order_by(Domain.id)).all()
    rows = []
    for unit in units:
        _, views = measure_views(unit, period)
        cells: dict[str, ScoreCell] = {}
        for view in views:
            cell = cells.setdefault(view.measure.domain, ScoreCell())
            rag = view.latest_rag
            cell.rag_counts[rag or "none"] = cell.rag_counts.get(rag or "none", 0) + 1
            if RAG_ORDER.get(rag, 0) > RAG_ORDER.get(cell.worst, 0):
                cell.worst = rag
            values = [p.actual for p in view.measure.series[-2:]]
            if len(values) == 2 and None not in values and values[0] != values[1]:
                better = (values[1] > values[0]) == (view.measure.direction == "higher_is_better")
                if better:
                    cell.improving += 1
                else:
                    cell.worsening += 1
        rows.append((unit, cells))
    return period, domains, rows
