"""Scheduler faults (RELIABILITY-ANCHORS section 7, checks 1 to 4), with real processes.

1. Schedulers in every gunicorn worker plus two ``escalate scheduler`` processes (PostgreSQL):
   N due deadlines give exactly N reminders and N e-mails at the SMTP sink, no duplicate.
2. A scheduler ``SIGKILL``ed at seeded random points, then restarted: every due reminder
   sent exactly once; a claim left by a killed dispatcher is taken again after its lease.
3. The scheduler down for 7 fake days over Christmas bank holidays, then started once:
   every missed reminder sent once, its lateness on the row, digests coalesced.
4. Sweeps released together by a barrier (8 processes on PostgreSQL, 2 on SQLite), repeated:
   disjoint claims, no duplicate effect, no error surfaced (SQLite's lock is waited for).

Lateness: a reminder has no ``late_by`` column; it is ``processed_at - send_at`` on the row
(both stored), which these tests read.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import free_port
from tests.profile import SEED, full_profile, scaled
from tests.reliability.scheduler_support import (
    CLOCK_ENV,
    SEPARATE_INSTANCES_ENV,
    SwitchableSMTP,
    children,
    run_scheduler,
    sweep_worker,
    wait_for,
    write_clock,
)
from workflow_app.extensions import db
from workflow_app.models.deadlines import DigestItem, JobRun, Reminder
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.sender import STALE_CLAIM
from workflow_app.scheduling.jobs import sweep
from workflow_app.services import deadlines as service

ROOT = Path(__file__).resolve().parents[2]
# Deadlines created on Mon 2 Nov 2026 with 10 working days are due Mon 16 Nov at 17:00;
# their reminders go at 08:00 on 9, 13, 16, 17 (overdue) and 18 Nov (to the executive).
CREATED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ALL_DUE = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def clock_at():
    """The test process's clock, moved by the test. It ticks: a stopped clock also stops
    ``time.monotonic``, and multiprocessing's waits would never time out."""
    traveller = time_machine.travel(CREATED, tick=True)
    yield traveller.start()
    traveller.stop()


@pytest.fixture
def people_and_unit(create_person, create_unit):
    """(lead, executive, unit): reminders go to the lead, the last one to the executive."""
    lead = create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk")
    executive = create_person("executive_director", name="Eve Exec", email="exec@example.nhs.uk")
    unit = create_unit(lead=lead, name="Surgery", accountable_executive_id=executive.id)
    return lead, executive, unit


@pytest.fixture
def sink():
    server = SwitchableSMTP()
    server.start()
    yield server
    server.stop()


def make_deadlines(unit, n: int, *, prefix: str = "d", working_days: int = 10, owner=None):
    made = [
        service.create_deadline(
            dedupe_key=f"{prefix}{i}",
            kind="update_due",
            title=f"Update {prefix}{i}",
            unit=unit,
            owner=owner,
            framework="iqpf",
            working_days=working_days,
        )
        for i in range(n)
    ]
    db.session.commit()
    return made


def fresh(query):
    """Run ``query`` on a fresh snapshot (other processes have been writing)."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.scalars(query).all()


def reminder_keys_in_outbox() -> list[str]:
    return fresh(
        sa.select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.like("reminder:%"))
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_env(tmp_path: Path, database_url: str, **values: str) -> dict[str, str]:
    """Environment of an ``escalate`` subprocess: development config on the test database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MAIL_", "SCHEDULER_", "SWEEP_", "ESCALATE_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url,
        ESCALATE_ENV="development",
        ESCALATE_INSTANCE_PATH=str(tmp_path / "instance"),
        **values,
    )
    return env


# --- check 2 ----------------------------------------------------------------------------------


def test_a_scheduler_killed_at_random_points_loses_and_doubles_nothing(
    app, database_url, clock_at, people_and_unit, sink, tmp_path
):
    lead, executive, unit = people_and_unit
    kills = scaled(5, 50)
    rng = random.Random(SEED)
    make_deadlines(unit, 4, prefix="first")
    settings = {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": sink.port,
        "SWEEP_SECONDS": 1,
        "INSTANCE_PATH": tmp_path,
    }
    context = children()
    in_window: set[str] = set()  # Message-IDs a kill left between "claimed" and "sent"

    def start(now: datetime, n: int):
        ready = tmp_path / f"ready-{n}"
        process = context.Process(
            target=run_scheduler, args=(database_url, settings, now, str(ready))
        )
        process.start()
        wait_for(ready.exists, 60, 0.01, "the scheduler to start")
        return process

    for n in range(kills):
        # Fresh work before each start (5 reminders a deadline), so the kills keep landing
        # in every phase: selecting, claiming, writing e-mails, sending them.
        make_deadlines(unit, 2, prefix=f"kill{n}-")
        process = start(ALL_DUE, n)
        time.sleep(rng.uniform(0, 0.5))
        process.kill()  # SIGKILL: no clean-up of any kind
        process.join()
        in_window |= set(
            fresh(sa.select(OutboxMessage.message_id).where(OutboxMessage.status == "sending"))
        )

    due = {r.id for r in fresh(sa.select(Reminder).where(Reminder.send_at <= ALL_DUE))}
    assert len(due) == 5 * (4 + 2 * kills)
    # Restarted after the dispatcher's lease: the stale claims are taken again.
    process = start(ALL_DUE + STALE_CLAIM + timedelta(minutes=1), kills)
    try:

        def finished() -> bool:
            pending = fresh(sa.select(Reminder.id).where(Reminder.status == "pending"))
            unsent = fresh(sa.select(OutboxMessage.id).where(OutboxMessage.status != "sent"))
            return not (set(pending) & due) and not unsent

        wait_for(finished, 120, 0.2, "every reminder and e-mail")
    finally:
        process.kill()
        process.join()

    reminders = fresh(sa.select(Reminder).where(Reminder.id.in_(due)))
    assert {r.status for r in reminders} == {"sent"}  # 0 lost
    keys = reminder_keys_in_outbox()
    assert sorted(keys) == sorted(f"reminder:{i}" for i in due)  # 0 doubled, 0 lost
    messages = fresh(sa.select(OutboxMessage))
    arrived = sink.handler.message_ids()
    assert set(arrived) == {m.message_id for m in messages}  # every e-mail at the sink
    duplicates = {mid for mid, count in arrived.items() if count > 1}
    # A message arrives twice only if a kill fell between the server's 250 and "sent".
    assert duplicates <= in_window
    assert sum(arrived[mid] - 1 for mid in duplicates) <= kills
    print(
        f"\ncheck 2: {kills} kills, {len(due)} reminders, {len(messages)} e-mails; "
        f"{len(in_window)} claims left mid-send, {len(duplicates)} sent twice"
    )


# --- check 3 ----------------------------------------------------------------------------------


def test_after_seven_days_down_over_bank_holidays_every_missed_reminder_goes_once(
    app, database_url, clock_at, people_and_unit, create_person, tmp_path
):
    lead, executive, unit = people_and_unit
    reader = create_person("directorate_lead", email="digest@example.nhs.uk")
    reader.notification_mode = "digest"
    db.session.commit()
    # Decided Thu 17 Dec 2026. Working days after it: 18, 21, 22, 23, 24, 29 Dec ...
    # (25 and 28 Dec are bank holidays). 3 days: due Tue 22 Dec; 5 days: due Thu 24 Dec.
    clock_at.move_to(utc(2026, 12, 17, 11, 0))
    (three,) = make_deadlines(unit, 1, prefix="three", working_days=3)
    (five,) = make_deadlines(unit, 1, prefix="five", working_days=5)
    make_deadlines(unit, 1, prefix="ten", working_days=10)
    make_deadlines(unit, 1, prefix="digest", working_days=5, owner=reader)

    for day in (21, 22):  # the scheduler runs on Monday and Tuesday morning ...
        clock_at.move_to(utc(2026, 12, day, 9, 0))
        sweep()
    # ... and is down from then until Tuesday 29 Dec, 09:00: seven days.
    restart = utc(2026, 12, 29, 9, 0)
    missed = fresh(
        sa.select(Reminder).where(Reminder.status == "pending", Reminder.send_at <= restart)
    )
    ahead = {
        r.id
        for r in fresh(
            sa.select(Reminder).where(Reminder.status == "pending", Reminder.send_at > restart)
        )
    }
    assert {r.send_at.date() for r in missed} == {utc(2026, 12, d).date() for d in (23, 24, 29)}
    expected = {r.id: r.send_at for r in missed}
    digest_ids = {r.id for r in missed if r.recipient_id == reader.id}
    assert digest_ids and len(digest_ids) < len(expected)
    keys_before = set(reminder_keys_in_outbox())

    clock = tmp_path / "clock.json"
    write_clock(clock, restart)
    env = child_env(tmp_path, database_url, SWEEP_SECONDS="3600", **{CLOCK_ENV: str(clock)})
    log = (tmp_path / "scheduler.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.scheduler_support", "escalate", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: (
                fresh(
                    sa.select(JobRun.id).where(
                        JobRun.job == "digest", JobRun.period_key == "2026-12-29"
                    )
                )
                and not fresh(
                    sa.select(Reminder.id).where(
                        Reminder.id.in_(expected), Reminder.status == "pending"
                    )
                )
            ),
            60,
            0.2,
            "the start-up sweep",
        )
    finally:
        stop(process)
        log.close()

    after = {r.id: r for r in fresh(sa.select(Reminder).where(Reminder.id.in_(expected)))}
    assert {r.status for r in after.values()} == {"sent"}
    for reminder in after.values():
        late_by = reminder.processed_at - reminder.send_at
        assert restart <= reminder.processed_at < restart + timedelta(minutes=2)
        assert late_by >= restart - expected[reminder.id]
    worst = max(r.processed_at - r.send_at for r in after.values())
    # E-mailed once each; the digest reader's missed reminders are lines of one digest.
    new_keys = set(reminder_keys_in_outbox()) - keys_before
    assert new_keys == {f"reminder:{i}" for i in set(expected) - digest_ids}
    items = fresh(sa.select(DigestItem).where(DigestItem.reminder_id.in_(digest_ids)))
    assert len(items) == len(digest_ids)
    assert len({item.digest_message_id for item in items}) == 1  # one digest, not one a day
    digests = fresh(
        sa.select(OutboxMessage).where(
            OutboxMessage.kind == "digest", OutboxMessage.to_address == reader.email
        )
    )
    assert len(digests) == 1
    # The deadline due 22 Dec escalated to the executive once; none was escalated twice.
    escalations = Counter(
        fresh(
            sa.select(Reminder.deadline_id).where(
                Reminder.kind == "overdue_escalation", Reminder.status == "sent"
            )
        )
    )
    assert escalations == {three.id: 1}
    # Worded for the moment it went: the 1-day-before reminder of the 24 Dec deadline.
    before = fresh(
        sa.select(Reminder.id).where(Reminder.deadline_id == five.id, Reminder.kind == "before_due")
    )
    subject = fresh(
        sa.select(OutboxMessage.subject).where(
            OutboxMessage.dedupe_key.in_([f"reminder:{i}" for i in before])
        )
    )
    assert subject and all(s.startswith("Overdue:") for s in subject)
    # Nothing due after the restart went early.
    still = fresh(sa.select(Reminder.status).where(Reminder.id.in_(ahead)))
    assert set(still) == {"pending"}
    print(f"\ncheck 3: {len(expected)} missed reminders sent once; worst lateness {worst}")


# --- check 4 ----------------------------------------------------------------------------------


def test_sweeps_released_together_claim_disjoint_sets(
    app, database_url, db_kind, clock_at, people_and_unit, tmp_path
):
    lead, executive, unit = people_and_unit
    workers = 8 if db_kind == "postgres" else 2
    rounds = scaled(10, 100)
    context = children()
    barrier = context.Barrier(workers)
    tasks = [context.Queue() for _ in range(workers)]
    results = context.Queue()
    settings = {"INSTANCE_PATH": tmp_path}
    processes = [
        context.Process(target=sweep_worker, args=(database_url, settings, barrier, queue, results))
        for queue in tasks
    ]
    for process in processes:
        process.start()
    overlaps, errors, claimed_total = 0, [], 0
    try:
        for n in range(rounds):
            created = CREATED + timedelta(weeks=n)
            clock_at.move_to(created)
            make_deadlines(unit, 8, prefix=f"r{n}-")
            now = created + timedelta(days=17)  # every reminder of this round is due
            due = set(
                fresh(
                    sa.select(Reminder.id).where(
                        Reminder.status == "pending", Reminder.send_at <= now
                    )
                )
            )
            for queue in tasks:
                queue.put(now)
            outcomes = [results.get(timeout=120) for _ in range(workers)]
            claims = Counter(i for _, claimed, _ in outcomes for i in claimed)
            overlaps += sum(count - 1 for count in claims.values())
            errors += [step for _, _, failed in outcomes for step in failed]
            assert set(claims) == due, f"round {n}: claimed {len(claims)} of {len(due)}"
            claimed_total += len(due)
    finally:
        for queue in tasks:
            queue.put(None)
        for process in processes:
            process.join(30)
            if process.exitcode is None:
                process.kill()
    assert overlaps == 0
    assert errors == []  # no deadlock, no "database is locked", no duplicate key surfaced
    keys = reminder_keys_in_outbox()
    assert len(keys) == len(set(keys)) == claimed_total
    assert not fresh(sa.select(Reminder.id).where(Reminder.status == "pending"))
    print(f"\ncheck 4: {rounds} rounds x {workers} sweeps, {claimed_total} reminders, 0 overlaps")


# --- check 1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instances",
    [
        "separate",
        pytest.param(
            "shared",
            marks=pytest.mark.skipif(
                not full_profile(), reason="full profile only (ESCALATE_TEST_PROFILE=full)"
            ),
        ),
    ],
)
def test_schedulers_in_every_worker_and_two_processes_send_each_reminder_once(
    app, database_url, db_kind, clock_at, people_and_unit, sink, tmp_path, instances
):
    """``separate``: each worker has its own instance folder, so the host lock does not
    stop it and six schedulers really run; ``shared``: the lock leaves one per host."""
    if db_kind != "postgres":
        pytest.skip("PostgreSQL only: several hosts' worth of schedulers on one database")
    lead, executive, unit = people_and_unit
    n = scaled(200, 1000)
    make_deadlines(unit, n)
    first = fresh(sa.select(sa.func.min(Reminder.send_at)))[0]
    targets = {r.id for r in fresh(sa.select(Reminder).where(Reminder.send_at == first))}
    assert len(targets) == n

    clock = tmp_path / "clock.json"
    write_clock(clock, first - timedelta(hours=1))
    env = child_env(
        tmp_path,
        database_url,
        SCHEDULER_MODE="embedded",
        SWEEP_SECONDS="1",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(sink.port),
        **{CLOCK_ENV: str(clock)},
    )
    if instances == "separate":
        env[SEPARATE_INSTANCES_ENV] = str(tmp_path / "workers")
    logs = {name: tmp_path / f"{name}.log" for name in ("gunicorn", "scheduler0", "scheduler1")}
    commands = {
        "gunicorn": [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            "4",
            "-b",
            f"127.0.0.1:{free_port()}",
            "-c",
            "python:tests.reliability.scheduler_support",
            "wsgi:app",
        ],
        "scheduler0": [sys.executable, "-m", "tests.reliability.scheduler_support"]
        + ["escalate", "scheduler"],
    }
    commands["scheduler1"] = commands["scheduler0"]
    processes = []
    try:
        for name, command in commands.items():
            with logs[name].open("w") as out:
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
                )

        def text(name: str) -> str:
            return logs[name].read_text()

        wait_for(
            lambda: (
                text("gunicorn").count("escalate-test: worker") == 4
                and all("Scheduler running" in text(f"scheduler{i}") for i in (0, 1))
            ),
            90,
            0.2,
            "4 workers and 2 schedulers",
        )
        started = text("gunicorn").count("scheduler started")
        assert started == (4 if instances == "separate" else 1)
        time.sleep(2)  # their start-up sweeps, an hour before the reminders are due
        write_clock(clock, first - timedelta(seconds=1))  # every scheduler sees 08:00 at once

        def finished() -> bool:
            sent = fresh(
                sa.select(Reminder.id).where(Reminder.id.in_(targets), Reminder.status == "sent")
            )
            unsent = fresh(sa.select(OutboxMessage.id).where(OutboxMessage.status != "sent"))
            return len(sent) == len(targets) and not unsent

        wait_for(finished, 120, 0.2, "every reminder sent")
        time.sleep(3)  # a few more ticks of six schedulers: a duplicate would show now
    finally:
        for process in processes:
            stop(process)

    keys = reminder_keys_in_outbox()
    assert sorted(k for k in keys if int(k.split(":")[1]) in targets) == sorted(
        f"reminder:{i}" for i in targets
    )
    messages = fresh(sa.select(OutboxMessage))
    arrived = sink.handler.message_ids()
    assert arrived == {m.message_id: 1 for m in messages}  # each exactly once at the sink
    output = "\n".join(path.read_text() for path in logs.values())
    # A unique key hit or any failed step would be logged: count them, expect none.
    violations = output.count("IntegrityError") + output.count("UniqueViolation")
    failed_steps = output.count("sweep step")
    assert (violations, failed_steps) == (0, 0), output[-3000:]
    print(
        f"\ncheck 1 ({instances}): {started} worker schedulers + 2 processes, {n} reminders "
        f"and {len(messages)} e-mails, each once"
    )
