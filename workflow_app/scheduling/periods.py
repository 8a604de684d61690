"""Claiming a periodic job's run (the monthly review of 2026-10, today's digest ...) once.

The claim is a :class:`JobRun` row with a unique ``(job, period_key)``, inserted and flushed
as the first write of the caller's transaction, so the job's work commits with it or not at
all. A second scheduler that gets there at the same moment meets the unique key: on
PostgreSQL its INSERT waits for the first transaction and then fails; on SQLite it waits
for the write lock. Either way it is told "not yours" instead of failing its sweep step.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.deadlines import JobRun


def claim_period(
    job: str, period_key: str, *, now: datetime, period: date | None = None
) -> JobRun | None:
    """Claim the run of ``job`` for ``period_key``, or return None if it has (or is being)
    run elsewhere. Call it before any other write of the transaction: on a clash with a
    run being committed at the same moment, the session is rolled back."""
    if db.session.scalar(
        sa.select(JobRun.id).where(JobRun.job == job, JobRun.period_key == period_key)
    ):
        return None
    run = JobRun(job=job, period_key=period_key, period=period, started_at=now)
    db.session.add(run)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()  # another scheduler claimed it a moment ago
        return None
    return run
