"""Small builders for hand-made evaluation inputs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from workflow_app.evaluation import MeasureInput, MonthPoint
from workflow_app.evaluation.rules import add_months

JAN = date(2026, 1, 1)


def series(
    values: Sequence[float | None],
    start: date = JAN,
    trajectory: Sequence[float | None] | None = None,
) -> tuple[MonthPoint, ...]:
    """Monthly points from ``start``; ``None`` values are gap months."""
    return tuple(
        MonthPoint(add_months(start, i), v, trajectory[i] if trajectory else None)
        for i, v in enumerate(values)
    )


def measure(
    values: Sequence[float | None] = (),
    *,
    code: str = "RTT26",
    name: str = "Referral-to-treatment within 26 weeks",
    domain: str = "access_activity",
    kind: str = "key_deliverable",
    target: float = 85,
    direction: str = "higher_is_better",
    tolerance: float | None = None,
    unit_of_measure: str = "percent",
    trajectory: Sequence[float | None] | None = None,
    start: date = JAN,
) -> MeasureInput:
    return MeasureInput(
        code=code,
        name=name,
        domain=domain,
        kind=kind,
        target=target,
        direction=direction,  # type: ignore[arg-type]
        tolerance=tolerance,
        unit_of_measure=unit_of_measure,
        series=series(values, start, trajectory),
    )


def month(n: int) -> date:
    """The n-th month of 2026 (1 = Jan)."""
    return date(2026, n, 1)
