"""Building and starting the APScheduler 3 scheduler (STYLE-ANCHORS section 7).

In-memory job store only (nothing pickled), fixed job ids, ``coalesce``, one instance per
job, an explicit misfire grace. ``SCHEDULER_MODE=embedded`` starts a background scheduler
in the web process on its first request (so ``flask run``'s reloader parent and CLI
commands never start one); ``off`` leaves it to ``escalate scheduler``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from workflow_app.scheduling import jobs

_start_lock = threading.Lock()


def build_scheduler(app: Flask, *, blocking: bool = False) -> BaseScheduler:
    """Return a scheduler with every job registered, not yet started."""
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(
        timezone="Europe/London",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(
        jobs.run_sweep,
        "interval",
        seconds=app.config["SWEEP_SECONDS"],
        id="sweep",
        args=[app],
        replace_existing=True,
        # Run at once on start: catch up whatever fell due while nothing was running.
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def init_scheduler(app: Flask) -> None:
    """Arrange for the embedded scheduler to start with the first request, once."""
    app.extensions["escalate_scheduler"] = None
    if app.config["SCHEDULER_MODE"] != "embedded":
        return

    @app.before_request
    def _start_embedded_scheduler() -> None:
        if app.extensions["escalate_scheduler"] is None:
            start_embedded_scheduler(app)


def start_embedded_scheduler(app: Flask) -> BaseScheduler:
    """Start the background scheduler in this process (idempotent)."""
    with _start_lock:
        scheduler = app.extensions.get("escalate_scheduler")
        if scheduler is None:
            scheduler = build_scheduler(app)
            scheduler.start()
            app.extensions["escalate_scheduler"] = scheduler
            app.logger.info("Embedded scheduler started")
        return scheduler
