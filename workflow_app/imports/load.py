"""Storing the valid rows of a parsed file: actuals and finance positions as revisions,
trajectories as plans (DOMAIN.md decisions 5 and 10).

Loading is idempotent: a value equal to the current one changes nothing; a different value
becomes a new revision (who, when, which file) and the earlier revisions stay. Services
flush, never commit: the caller's :func:`~workflow_app.services.unit_of_work.transaction`
is the commit point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.imports.parse import FINANCE, Number, ParsedFile, Problem
from workflow_app.imports.validate import MONEY_PLACES, VALUE_PLACES, Resolved, validate
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Person
from workflow_app.permissions import can_manage_units
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError, require

CHUNK = 500
AUDIT_DETAIL_LIMIT = 200


class FileHasProblems(ServiceError):
    """The file has problems and the person did not choose to load only the valid rows."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(
            f"Nothing was loaded: the file has {len(problems)} problem"
            f"{'' if len(problems) == 1 else 's'}. Correct them and upload the file again, "
            "or load only the valid rows."
        )


@dataclass
class LoadResult:
    """What a load did. Counts are of values (an actual, a trajectory value, a finance
    position); ``rejected`` counts rows with problems that were left out.

    ``changed`` holds every (unit id, month) with a value created or changed, for proposal
    supersession (DOMAIN.md decision 10).
    """

    created: int = 0
    revised: int = 0
    unchanged: int = 0
    rejected: int = 0
    changed: set[tuple[int, date]] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "revised": self.revised,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "changed": sorted([unit_id, f"{period:%Y-%m}"] for unit_id, period in self.changed),
        }


def _chunks(values: Iterable, size: int = CHUNK):
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _q(value: Decimal | None, places: Decimal) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(places)


def _latest(rows: Iterable, key: Callable) -> dict:
    latest: dict = {}
    for row in rows:
        k = key(row)
        if k not in latest or row.revision > latest[k].revision:
            latest[k] = row
    return latest


def load_rows(
    actor: Person,
    parsed: ParsedFile,
    *,
    only_valid: bool,
    sha256: str = "",
    batch_id: int | None = None,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Validate ``parsed`` again and store its valid rows.

    Nothing is stored when the file has problems, unless ``only_valid``; a problem with the
    file as a whole (e.g. its header) always stops the load.

    :raises FileHasProblems: problems found and not ``only_valid``.
    :raises PermissionDenied: ``actor`` is not the performance team or a system admin.
    """
    require(can_manage_units(actor), "Only the performance team can load data")
    resolved = validate(parsed, today=today)
    problems = parsed.all_problems
    if parsed.problems or (problems and not only_valid):
        raise FileHasProblems(problems)
    if not resolved:
        raise ServiceError("Nothing was loaded: the file has no valid rows with values.")

    result = LoadResult(rejected=len(parsed.rejected_rows))
    loader = _Loader(actor, parsed.filename, result)
    loader.prefetch(resolved)
    for row in resolved:
        loader.load(row)
        if progress is not None:
            progress(1)
    db.session.flush()

    details = {
        "filename": parsed.filename,
        "sha256": sha256,
        "kind": parsed.kind,
        "layout": parsed.layout,
        "only_valid": only_valid,
        **result.as_dict(),
        "revisions": loader.revisions[:AUDIT_DETAIL_LIMIT],
    }
    details.pop("changed")
    record_event(
        "data.imported",
        object_type="import_batch",
        object_id=batch_id if batch_id is not None else sha256[:12],
        summary=(
            f"Loaded {parsed.filename}: {result.created} new, {result.revised} revised, "
            f"{result.unchanged} unchanged, {result.rejected} rejected rows"
        ),
        actor=actor,
        details=details,
    )
    if loader.trajectory_changes:
        record_event(
            "data.trajectory_changed",
            object_type="import_batch",
            object_id=batch_id if batch_id is not None else sha256[:12],
            summary=(
                f"{len(loader.trajectory_changes)} trajectory values changed by {parsed.filename}"
            ),
            actor=actor,
            details={"changes": loader.trajectory_changes[:AUDIT_DETAIL_LIMIT]},
        )
    return result


class _Loader:
    def __init__(self, actor: Person, source: str, result: LoadResult):
        self.actor = actor
        self.source = source[:200]
        self.result = result
        self.now = utcnow()
        self.actuals: dict[tuple[int, date], MonthlyActual] = {}
        self.trajectories: dict[tuple[int, date], TrajectoryValue] = {}
        self.finance: dict[tuple[int, date], FinancePosition] = {}
        self.codes: dict[int, str] = {}
        self.revisions: list[dict[str, Any]] = []
        self.trajectory_changes: list[dict[str, Any]] = []

    def prefetch(self, rows: list[Resolved]) -> None:
        periods = sorted({r.period for r in rows})
        measure_ids = {r.measure_id for r in rows if r.measure_id is not None}
        unit_ids = {r.unit_id for r in rows if r.row.kind == FINANCE}
        for ids in _chunks(measure_ids):
            self.actuals.update(
                _latest(
                    db.session.scalars(
                        sa.select(MonthlyActual).where(
                            MonthlyActual.measure_id.in_(ids), MonthlyActual.period.in_(periods)
                        )
                    ),
                    lambda a: (a.measure_id, a.period),
                )
            )
            for value in db.session.scalars(
                sa.select(TrajectoryValue).where(
                    TrajectoryValue.measure_id.in_(ids), TrajectoryValue.period.in_(periods)
                )
            ):
                self.trajectories[(value.measure_id, value.period)] = value
            self.codes.update(
                db.session.execute(sa.select(Measure.id, Measure.code).where(Measure.id.in_(ids)))
                .tuples()
                .all()
            )
        for ids in _chunks(unit_ids):
            self.finance.update(
                _latest(
                    db.session.scalars(
                        sa.select(FinancePosition).where(
                            FinancePosition.unit_id.in_(ids), FinancePosition.period.in_(periods)
                        )
                    ),
                    lambda f: (f.unit_id, f.period),
                )
            )

    def load(self, resolved: Resolved) -> None:
        row = resolved.row
        if row.kind == FINANCE:
            self._finance(resolved)
            return
        if row.actual is not None:
            self._actual(resolved, row.actual)
        if row.trajectory is not None:
            self._trajectory(resolved, row.trajectory)

    def _actual(self, resolved: Resolved, number: Number) -> None:
        key = (resolved.measure_id, resolved.period)
        value = _q(number.value, VALUE_PLACES)
        current = self.actuals.get(key)
        if current is not None and _q(current.value, VALUE_PLACES) == value:
            self.result.unchanged += 1
            return
        revision = 1 if current is None else current.revision + 1
        actual = MonthlyActual(
            measure_id=resolved.measure_id,
            period=resolved.period,
            value=value,
            revision=revision,
            recorded_by_id=self.actor.id,
            recorded_at=self.now,
            source=self.source,
        )
        db.session.add(actual)
        self.actuals[key] = actual
        self.result.changed.add((resolved.unit_id, resolved.period))
        if current is None:
            self.result.created += 1
        else:
            self.result.revised += 1
            self.revisions.append(
                {
                    "measure": self.codes.get(resolved.measure_id),
                    "month": f"{resolved.period:%Y-%m}",
                    "revision": revision,
                    "from": str(_q(current.value, VALUE_PLACES)),
                    "to": str(value),
                }
            )

    def _trajectory(self, resolved: Resolved, number: Number) -> None:
        key = (resolved.measure_id, resolved.period)
        value = _q(number.value, VALUE_PLACES)
        current = self.trajectories.get(key)
        if current is None:
            current = TrajectoryValue(
                measure_id=resolved.measure_id, period=resolved.period, value=value
            )
            db.session.add(current)
            self.trajectories[key] = current
            self.result.created += 1
        elif _q(current.value, VALUE_PLACES) == value:
            self.result.unchanged += 1
            return
        else:
            self.trajectory_changes.append(
                {
                    "measure": self.codes.get(resolved.measure_id),
                    "month": f"{resolved.period:%Y-%m}",
                    "from": str(_q(current.value, VALUE_PLACES)),
                    "to": str(value),
                }
            )
            current.value = value
            self.result.revised += 1
        self.result.changed.add((resolved.unit_id, resolved.period))

    def _finance(self, resolved: Resolved) -> None:
        row = resolved.row
        key = (resolved.unit_id, resolved.period)
        current = self.finance.get(key)
        ytd = _q(row.ytd_variance.value, MONEY_PLACES)
        forecast = _q(row.forecast_variance.value, MONEY_PLACES)
        # A blank budget keeps the budget already recorded (blank = no value given).
        if row.budget is not None:
            budget = _q(row.budget.value, MONEY_PLACES)
        else:
            budget = _q(current.budget, MONEY_PLACES) if current is not None else None
        if current is not None and (
            _q(current.ytd_variance, MONEY_PLACES),
            _q(current.forecast_variance, MONEY_PLACES),
            _q(current.budget, MONEY_PLACES),
        ) == (ytd, forecast, budget):
            self.result.unchanged += 1
            return
        revision = 1 if current is None else current.revision + 1
        position = FinancePosition(
            unit_id=resolved.unit_id,
            period=resolved.period,
            budget=budget,
            ytd_variance=ytd,
            forecast_variance=forecast,
            revision=revision,
            recorded_by_id=self.actor.id,
            recorded_at=self.now,
        )
        db.session.add(position)
        self.finance[key] = position
        self.result.changed.add(key)
        if current is None:
            self.result.created += 1
        else:
            self.result.revised += 1
            self.revisions.append(
                {
                    "unit": row.unit_code,
                    "month": f"{resolved.period:%Y-%m}",
                    "revision": revision,
                    "from": [
                        str(_q(current.ytd_variance, MONEY_PLACES)),
                        str(_q(current.forecast_variance, MONEY_PLACES)),
                    ],
                    "to": [str(ytd), str(forecast)],
                }
            )
