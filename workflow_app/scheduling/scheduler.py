"""Building and starting the APScheduler 3 scheduler (STYLE-ANCHORS section 7).

In-memory job store only (nothing pickled), fixed job ids, ``coalesce``, one instance per
job, an explicit misfire grace. ``SCHEDULER_MODE=embedded`` starts a background scheduler
in the web process on its first request (so ``flask run``'s reloader parent and CLI
commands never start one); ``off`` leaves it to ``escalate scheduler``.
"""

from __future__ import annotations

import fcntl
import threading
from datetime import UTC, datetime
from pathlib import Path

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


def _claim_host_lock(app: Flask):
    """Take an exclusive lock file in the instance folder, or return None if another
    process on this host holds it (e.g. another gunicorn worker with embedded mode)."""
    path = Path(app.instance_path) / "scheduler.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def start_embedded_scheduler(app: Flask) -> BaseScheduler | None:
    """Start the background scheduler in this process, unless another process on this
    host already runs one (idempotent). Correctness never depends on this: every due row
    is claimed atomically; the lock only avoids needless duplicate work."""
    with _start_lock:
        scheduler = app.extensions.get("escalate_scheduler")
        if scheduler is not None:
            return scheduler
        lock = _claim_host_lock(app)
        if lock is None:
            app.extensions["escalate_scheduler"] = "elsewhere"
            app.logger.info("Another process on this host runs the scheduler")
            return None
        scheduler = build_scheduler(app)
        scheduler.start()
        app.extensions["escalate_scheduler"] = scheduler
        app.extensions["escalate_scheduler_lock"] = lock
        app.logger.info("Embedded scheduler started")
        return scheduler
