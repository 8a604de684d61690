"""Harness for the scheduler and mail fault tests (RELIABILITY-ANCHORS section 7, checks 1-7).

Real processes, a fake clock they share, and an SMTP sink whose answers can be switched:

- **Shared fake clock.** A child process gets the harness's fake time without any hook in the
  product: it runs ``time-machine`` itself. Subprocesses (``escalate scheduler``, gunicorn
  workers) read a small JSON file named by ``ESCALATE_TEST_CLOCK``: the fake time at a real
  instant, so every process agrees on the same ticking clock, and a write to the file makes
  them all jump (a thread polls it). Forked children are simply given their fake "now".
- **Children.** :func:`children` is a ``forkserver`` context with the app preloaded, so a
  sweep process starts in a fraction of a second and can be ``SIGKILL``ed at any point.
- **Gunicorn hooks.** Run gunicorn with ``-c python:tests.reliability.scheduler_support``:
  each worker installs the shared clock, optionally takes its own instance folder (so the
  embedded scheduler's host lock does not stop it) and starts the embedded scheduler at once.
- **SMTP sink.** :class:`SwitchableSMTP` is aiosmtpd on 127.0.0.1 that accepts, answers 451
  or 550 (per recipient if asked), or is stopped and started again on the same port.
- ``python -m tests.reliability.scheduler_support escalate ARGS`` runs the real ``escalate``
  command line under the shared clock.

Nothing here imports the application at module level: gunicorn's master loads this file as
its configuration and must not fix the workers' instance folder before they fork.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

CLOCK_ENV = "ESCALATE_TEST_CLOCK"
SEPARATE_INSTANCES_ENV = "ESCALATE_TEST_INSTANCE_BASE"
MESSAGE_ID_RE = re.compile(r"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)


# --- the shared fake clock ------------------------------------------------------------------


def _real_time() -> float:
    """Wall-clock seconds, even inside a time-machine travel."""
    import time_machine

    # The escape hatch is only valid while travelling (it crashes before the first travel).
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.time.time()
    return time.time()


def write_clock(path: Path, fake_now: datetime) -> None:
    """Set the shared fake clock: ``fake_now`` from this real instant on, ticking."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fake": fake_now.timestamp(), "real": _real_time()}))
    tmp.replace(path)  # atomic: a reader never sees half a file


def read_clock(path: Path) -> float:
    """The shared fake time now, as a POSIX timestamp."""
    data = json.loads(path.read_text())
    return data["fake"] + (_real_time() - data["real"])


def install_shared_clock(path: Path, poll_seconds: float = 0.05) -> None:
    """Make this process's clock follow the shared clock file (jumps included)."""
    import time_machine

    traveller = time_machine.travel(read_clock(path), tick=True)
    coordinates = traveller.start()
    seen = path.stat().st_mtime_ns

    def follow() -> None:
        nonlocal seen
        while True:
            time.sleep(poll_seconds)
            try:
                mtime = path.stat().st_mtime_ns
                if mtime != seen:
                    seen = mtime
                    coordinates.move_to(read_clock(path))
            except (OSError, ValueError):
                continue  # the file is being replaced: read it next time

    threading.Thread(target=follow, name="shared-clock", daemon=True).start()


def install_clock_from_env() -> None:
    """Follow the shared clock if ``ESCALATE_TEST_CLOCK`` names one."""
    path = os.environ.get(CLOCK_ENV)
    if path:
        install_shared_clock(Path(path))


# --- forked children --------------------------------------------------------------------------

_PRELOAD = [
    "time_machine",
    "workflow_app",
    "workflow_app.scheduling.jobs",
    "workflow_app.scheduling.scheduler",
    "workflow_app.letters.pdf",
]
_PRELOAD_PREFIXES = ("workflow_app.", "apscheduler", "argon2", "icalendar", "openpyxl", "flask")


def children() -> multiprocessing.context.BaseContext:
    """A multiprocessing context whose children fork from a clean, preloaded server.

    The server imports what this process has already imported of the app (the blueprints
    ``create_app`` loads lazily), so a child only builds its app: well under a second.
    """
    context = multiprocessing.get_context("forkserver")
    loaded = sorted(name for name in sys.modules if name.startswith(_PRELOAD_PREFIXES))
    context.set_forkserver_preload(_PRELOAD + loaded)
    return context


def child_app(database_url: str, settings: dict):
    """The app a child runs: the test configuration on ``database_url`` with ``settings``."""
    from config import TestConfig
    from workflow_app import create_app

    config = type("ChildConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url})
    for key, value in settings.items():
        setattr(config, key, value)
    return create_app(config)


def _start_clock(fake_now: datetime | None) -> None:
    if fake_now is not None:
        import time_machine

        time_machine.travel(fake_now, tick=True).start()


def run_scheduler(database_url: str, settings: dict, fake_now: datetime, ready: str) -> None:
    """Child: what ``escalate scheduler`` does (blocking APScheduler, sweep at once and every
    ``SWEEP_SECONDS``), at ``fake_now``; touches ``ready`` just before starting."""
    _start_clock(fake_now)
    from workflow_app.scheduling.scheduler import build_scheduler

    app = child_app(database_url, settings)
    scheduler = build_scheduler(app, blocking=True)
    Path(ready).touch()
    scheduler.start()


def deliver_once(database_url: str, settings: dict, env: dict, fake_now: datetime) -> None:
    """Child: one pass of the mail dispatcher at ``fake_now`` with ``env`` set.

    ``settings=None`` builds the app the way production does (``create_app()`` reading
    ``ESCALATE_ENV`` and the rest from ``env``).
    """
    os.environ.update(env)
    _start_clock(fake_now)
    from workflow_app import create_app
    from workflow_app.notifications.sender import deliver_due_messages

    if settings is None:
        import importlib

        import config

        # The forkserver imported ``config`` before ``env`` was set; a production process
        # reads its environment at import, so read it again as one would.
        importlib.reload(config)
        app = create_app()
    else:
        app = child_app(database_url, settings)
    with app.app_context():
        deliver_due_messages()


def sweep_worker(database_url: str, settings: dict, barrier, tasks, results) -> None:
    """Child: for each ``now`` from ``tasks`` (None ends), wait at ``barrier`` with the other
    workers, run one sweep, and put (pid, claimed reminder ids, failed steps) in ``results``."""
    from workflow_app.extensions import db
    from workflow_app.scheduling import jobs, reminders

    claimed: list[int] = []
    original_claim = reminders._claim

    def recording_claim(reminder_ids, status, outcome, now):
        won = original_claim(reminder_ids, status, outcome, now)  # the ids this sweep claimed
        claimed.extend(won)
        return won

    reminders._claim = recording_claim  # instrumentation only: the claim itself is unchanged
    app = child_app(database_url, settings)
    while (now := tasks.get()) is not None:
        claimed.clear()
        with app.app_context():
            barrier.wait()
            report = jobs.sweep(now)
            db.session.remove()
        results.put((os.getpid(), list(claimed), report.errors))


# --- gunicorn hooks (this module is also the gunicorn configuration) --------------------------


def post_fork(server, worker) -> None:  # gunicorn hook
    """Before the worker loads ``wsgi:app``: shared clock, and its own instance folder if
    the test defeats the host lock on purpose."""
    install_clock_from_env()
    base = os.environ.get(SEPARATE_INSTANCES_ENV)
    if base:
        folder = Path(base) / f"worker-{worker.age}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["ESCALATE_INSTANCE_PATH"] = str(folder)


def post_worker_init(worker) -> None:  # gunicorn hook
    """Start the embedded scheduler now rather than on the worker's first request."""
    from workflow_app.scheduling.scheduler import start_embedded_scheduler

    started = start_embedded_scheduler(worker.wsgi) is not None
    print(
        f"escalate-test: worker {os.getpid()} scheduler {'started' if started else 'elsewhere'}",
        file=sys.stderr,
        flush=True,
    )


# --- the SMTP sink ----------------------------------------------------------------------------


class SinkHandler:
    """aiosmtpd handler: accepts by default; ``mode`` "451"/"550" refuses every message;
    ``refuse_rcpt`` refuses addresses for good; ``script`` gives an address its next answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self.mode = "accept"
        self.refuse_rcpt: set[str] = set()
        self.script: dict[str, list[str]] = {}
        self.rcpt_attempts: Counter[str] = Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            self.rcpt_attempts[address] += 1
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        if self.mode == "451":
            return "451 4.3.0 Try again later"
        if self.mode == "550":
            return "550 5.7.1 Rejected"
        with self.lock:
            for address in envelope.rcpt_tos:
                answers = self.script.get(address)
                if answers:
                    return answers.pop(0)
            data = envelope.content.decode("utf-8", "replace")
            match = MESSAGE_ID_RE.search(data)
            self.messages.append(
                {
                    "to": list(envelope.rcpt_tos),
                    "data": data,
                    "message_id": match.group(1) if match else None,
                }
            )
        return "250 OK"

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self.lock:
            return Counter(m["message_id"] for m in self.messages)


class SwitchableSMTP:
    """A real SMTP server on 127.0.0.1 that can be stopped and started on the same port."""

    def __init__(self) -> None:
        from tests.conftest import free_port

        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# --- processes --------------------------------------------------------------------------------


def wait_for(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``condition`` (real time) until it returns a truthy value; fail after ``timeout``."""
    deadline = _real_time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if _real_time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def main(argv: list[str]) -> None:
    """``python -m tests.reliability.scheduler_support escalate ARGS``: the real command line
    under the shared clock named by ``ESCALATE_TEST_CLOCK``."""
    if not argv or argv[0] != "escalate":
        raise SystemExit("usage: python -m tests.reliability.scheduler_support escalate ARGS")
    install_clock_from_env()
    from workflow_app.cli.main import cli

    cli.main(args=argv[1:], prog_name="escalate")


if __name__ == "__main__":
    main(sys.argv[1:])
