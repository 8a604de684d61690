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
    loader.write()

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


class _Current:
    """The current (highest-revision) value of an actual or finance position: what a new
    value is compared with, and the revision it would follow."""

    __slots__ = ("revision", "values")

    def __init__(self, revision: int, values: tuple):
        self.revision = revision
        self.values = values


class _Loader:
    """Works out every value's outcome in Python, then writes the new rows with a few
    executemany INSERTs (SQLAlchemy Core): one ORM object and flush per value was most of
    the time of a large file. Existing trajectory values are still changed through the ORM,
    so objects already in the session stay in step."""

    def __init__(self, actor: Person, source: str, result: LoadResult):
        self.actor = actor
        self.source = source[:200]
        self.result = result
        self.now = utcnow()
        self.actuals: dict[tuple[int, date], _Current] = {}
        self.trajectories: dict[tuple[int, date], TrajectoryValue | Decimal] = {}
        self.finance: dict[tuple[int, date], _Current] = {}
        self.codes: dict[int, str] = {}
        self.revisions: list[dict[str, Any]] = []
        self.trajectory_changes: list[dict[str, Any]] = []
        self.new_actuals: list[dict[str, Any]] = []
        self.new_trajectories: list[dict[str, Any]] = []
        self.new_finance: list[dict[str, Any]] = []

    def prefetch(self, rows: list[Resolved]) -> None:
        periods = sorted({r.period for r in rows})
        measure_ids = {r.measure_id for r in rows if r.measure_id is not None}
        unit_ids = {r.unit_id for r in rows if r.row.kind == FINANCE}
        actual = MonthlyActual.__table__.c
        position = FinancePosition.__table__.c
        for ids in _chunks(measure_ids):
            for measure_id, period, revision, value in db.session.execute(
                sa.select(actual.measure_id, actual.period, actual.revision, actual.value).where(
                    actual.measure_id.in_(ids), actual.period.in_(periods)
                )
            ).all():
                known = self.actuals.get((measure_id, period))
                if known is None or revision > known.revision:
                    self.actuals[(measure_id, period)] = _Current(
                        revision, (_q(value, VALUE_PLACES),)
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
            for row in db.session.execute(
                sa.select(
                    position.unit_id,
                    position.period,
                    position.revision,
                    position.ytd_variance,
                    position.forecast_variance,
                    position.budget,
                ).where(position.unit_id.in_(ids), position.period.in_(periods))
            ):
                known = self.finance.get((row.unit_id, row.period))
                if known is None or row.revision > known.revision:
                    self.finance[(row.unit_id, row.period)] = _Current(
                        row.revision,
                        (
                            _q(row.ytd_variance, MONEY_PLACES),
                            _q(row.forecast_variance, MONEY_PLACES),
                            _q(row.budget, MONEY_PLACES),
                        ),
                    )

    def write(self) -> None:
        """Insert the new rows (chunked executemany) and flush the trajectory changes."""
        for model, rows in (
            (MonthlyActual, self.new_actuals),
            (TrajectoryValue, self.new_trajectories),
            (FinancePosition, self.new_finance),
        ):
            for chunk in _chunks(rows, 5000):
                db.session.execute(sa.insert(model.__table__), chunk)
        db.session.flush()

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
        if current is not None and current.values[0] == value:
            self.result.unchanged += 1
            return
        revision = 1 if current is None else current.revision + 1
        self.new_actuals.append(
            {
                "measure_id": resolved.measure_id,
                "period": resolved.period,
                "value": value,
                "revision": revision,
                "recorded_by_id": self.actor.id,
                "recorded_at": self.now,
                "source": self.source,
            }
        )
        self.actuals[key] = _Current(revision, (value,))
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
                    "from": str(current.values[0]),
                    "to": str(value),
                }
            )

    def _trajectory(self, resolved: Resolved, number: Number) -> None:
        key = (resolved.measure_id, resolved.period)
        value = _q(number.value, VALUE_PLACES)
        current = self.trajectories.get(key)
        if current is None:
            # New: inserted in bulk by write(); later rows compare with the value alone.
            self.new_trajectories.append(
                {"measure_id": resolved.measure_id, "period": resolved.period, "value": value}
            )
            self.trajectories[key] = value
            self.result.created += 1
        else:
            old = _q(current if isinstance(current, Decimal) else current.value, VALUE_PLACES)
            if old == value:
                self.result.unchanged += 1
                return
            self.trajectory_changes.append(
                {
                    "measure": self.codes.get(resolved.measure_id),
                    "month": f"{resolved.period:%Y-%m}",
                    "from": str(old),
                    "to": str(value),
                }
            )
            if isinstance(current, Decimal):  # created earlier in this file, not yet written
                for pending in reversed(self.new_trajectories):
                    if (pending["measure_id"], pending["period"]) == key:
                        pending["value"] = value
                        break
                self.trajectories[key] = value
            else:
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
            budget = current.values[2] if current is not None else None
        if current is not None and current.values == (ytd, forecast, budget):
            self.result.unchanged += 1
            return
        revision = 1 if current is None else current.revision + 1
        self.new_finance.append(
            {
                "unit_id": resolved.unit_id,
                "period": resolved.period,
                "budget": budget,
                "ytd_variance": ytd,
                "forecast_variance": forecast,
                "revision": revision,
                "recorded_by_id": self.actor.id,
                "recorded_at": self.now,
            }
        )
        self.finance[key] = _Current(revision, (ytd, forecast, budget))
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
                    "from": [str(current.values[0]), str(current.values[1])],
                    "to": [str(ytd), str(forecast)],
                }
            )
