"""Measures (KPIs), their monthly actuals and trajectories, and finance positions.

Months are stored as the first day of the month (``period``). Actuals and finance
positions keep every revision: a corrected value is a new row with a higher ``revision``
(DOMAIN.md decision 10), and the latest revision is the current value.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.types import UTCDateTime

DIRECTIONS = {"higher_is_better": "Higher is better", "lower_is_better": "Lower is better"}
MEASURE_KINDS = {
    "national_target": "National target",
    "local_trajectory": "Local trajectory",
    "key_deliverable": "Key deliverable",
    "ministerial_priority": "Ministerial priority",
    "quality_standard": "Quality standard",
    "other": "Other",
}
UNITS_OF_MEASURE = {
    "percent": "%",
    "count": "count",
    "days": "days",
    "weeks": "weeks",
    "minutes": "minutes",
    "ratio": "ratio",
    "gbp": "£",
}

MONEY = sa.Numeric(14, 2)
VALUE = sa.Numeric(14, 4)


class Measure(db.Model):
    """A key performance indicator of a unit, in one domain."""

    __tablename__ = "measures"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "code"),
        sa.CheckConstraint(
            "direction IN ('higher_is_better', 'lower_is_better')", name="direction"
        ),
        sa.CheckConstraint("tolerance IS NULL OR tolerance >= 0", name="tolerance_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    domain_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("domains.id"))
    code: so.Mapped[str] = so.mapped_column(sa.String(40))
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40), default="other")
    target: so.Mapped[Decimal] = so.mapped_column(VALUE)
    direction: so.Mapped[str] = so.mapped_column(sa.String(20))
    # Absolute tolerance around target within which a miss is amber (DOMAIN.md decision 3).
    tolerance: so.Mapped[Decimal | None] = so.mapped_column(VALUE)
    unit_of_measure: so.Mapped[str] = so.mapped_column(sa.String(20), default="count")
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    is_active: so.Mapped[bool] = so.mapped_column(default=True)

    unit: so.Mapped[Unit] = so.relationship()
    domain: so.Mapped[Domain] = so.relationship()
    owner: so.Mapped[Person | None] = so.relationship()

    def __repr__(self) -> str:
        return f"<Measure {self.code}>"


class MonthlyActual(db.Model):
    """One revision of a measure's actual value for one month."""

    __tablename__ = "monthly_actuals"
    __table_args__ = (sa.UniqueConstraint("measure_id", "period", "revision"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    measure_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("measures.id"), index=True)
    period: so.Mapped[date] = so.mapped_column(sa.Date)
    value: so.Mapped[Decimal] = so.mapped_column(VALUE)
    revision: so.Mapped[int] = so.mapped_column(default=1)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    recorded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    source: so.Mapped[str] = so.mapped_column(sa.String(200), default="")

    measure: so.Mapped[Measure] = so.relationship()


class TrajectoryValue(db.Model):
    """The planned (trajectory) value of a measure for one month."""

    __tablename__ = "trajectory_values"
    __table_args__ = (sa.UniqueConstraint("measure_id", "period"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    measure_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("measures.id"), index=True)
    period: so.Mapped[date] = so.mapped_column(sa.Date)
    value: so.Mapped[Decimal] = so.mapped_column(VALUE)

    measure: so.Mapped[Measure] = so.relationship()


class FinancePosition(db.Model):
    """One revision of a unit's finance position for one month.

    Variances are in GBP with positive = overspend (adverse), DOMAIN.md decision 5.
    """

    __tablename__ = "finance_positions"
    __table_args__ = (sa.UniqueConstraint("unit_id", "period", "revision"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    period: so.Mapped[date] = so.mapped_column(sa.Date)
    budget: so.Mapped[Decimal | None] = so.mapped_column(MONEY)
    ytd_variance: so.Mapped[Decimal] = so.mapped_column(MONEY)
    forecast_variance: so.Mapped[Decimal] = so.mapped_column(MONEY)
    revision: so.Mapped[int] = so.mapped_column(default=1)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    recorded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    unit: so.Mapped[Unit] = so.relationship()
