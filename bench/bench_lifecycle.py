"""Benchmark: full escalation lifecycles per second through the services vs SpiffWorkflow.

What it does (see bench/README.md):

1. Setup, not measured: a fresh migrated SQLite file with N IQPF units, each with its lead,
   level-1 cases and one measure; an executive director and a performance-team reviewer
   (``bench_decisions.build_world``).
2. Measured, services: for each unit, 11 steps, each one request's worth of work (load the
   actor and the object by id, call the service, commit, ``session.remove()``):
   propose (``raise_escalation`` 1 -> 2a), decide (``decide_proposal``), ``start_plan``,
   ``save_draft`` (SMART data: two actions, a trajectory), ``submit``, ``start_review``,
   ``return_for_changes`` (an overall note and a comment on the first action), ``save_draft``
   (the action amended), ``submit``, ``start_review``, ``approve``.
3. Measured, SpiffWorkflow: ``bench/lifecycle.bpmn`` (a user task per step above; the
   review's outcome through an exclusive gateway: returned goes back to the draft, approved
   ends), N instances, the same 11 steps each. Each step loads the instance's serialized
   state from a table in the same SQLite file, deserializes it, completes the ready user
   task with the step's data (the same plan data for the drafts), runs the engine steps,
   serializes it and writes it back, one commit per step.

Figure: lifecycles/s of each, and the ratio services / SpiffWorkflow (target >= 1.5x).

Run: ``.venv/bin/python -m bench.bench_lifecycle [-n N] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import time_machine  # noqa: E402
from flask import Flask  # noqa: E402

from bench.bench_decisions import CLOCK, World, build_world, decide, propose  # noqa: E402
from bench.bench_sweep import fresh_database, make_app  # noqa: E402
from workflow_app.extensions import db  # noqa: E402
from workflow_app.models.cases import Decision, EscalationCase  # noqa: E402
from workflow_app.models.org import Person  # noqa: E402
from workflow_app.models.plans import RecoveryPlan  # noqa: E402
from workflow_app.services import plans  # noqa: E402

BPMN = Path(__file__).with_name("lifecycle.bpmn")
STEPS = (
    "propose",
    "decide",
    "start_plan",
    "save_draft",
    "submit",
    "start_review",
    "review",  # returned
    "save_draft",
    "submit",
    "start_review",
    "review",  # approved
)
TARGET = 1.5


@dataclass
class LifecycleResult:
    n: int
    setup_s: float
    services_s: float
    services_per_s: float
    spiff_s: float | None
    spiff_per_s: float | None
    ratio: float | None
    check: str
    spiff_state_bytes: int | None
    spiff_note: str


def smart_data(world: World, i: int) -> dict:
    """save_draft data passing the SMART check (as tests/plans/conftest.py)."""
    measure = world.measure_ids[i]
    return {
        "summary": "Referral to treatment has fallen below 80% for three months.",
        "risk_assessment": "Long waits raise the risk of harm; clinical review of the list.",
        "risk_level": "high",
        "support_requested": "Two locum consultants for six months.",
        "headlines": "",
        "narrative": "",
        "queries": "",
        "actions": [
            {
                "id": None,
                "description": "Run weekend theatre lists for orthopaedics",
                "measure_id": measure,
                "expected_effect": "from 76% to 85% by March 2027",
                "owner_id": world.lead_ids[i],
                "resources": "Theatre staff overtime, £120k",
                "domain_id": world.domain_ids["access"],
                "deliverable": "Orthopaedic backlog cleared",
                "due_on": date(2027, 3, 31),
                "milestones": "31/01/2027 first lists running",
            },
            {
                "id": None,
                "description": "Validate the waiting list with every patient",
                "measure_id": measure,
                "expected_effect": "2 percentage points",
                "owner_id": world.executive_id,
                "resources": "Two administrators for three months",
                "domain_id": world.domain_ids["quality"],
                "deliverable": "",
                "due_on": date(2027, 2, 26),
                "milestones": "",
            },
        ],
        "trajectory": [
            {"measure_id": measure, "period": date(2026, 12, 1), "planned_value": Decimal(78)},
            {"measure_id": measure, "period": date(2027, 3, 1), "planned_value": Decimal(85)},
        ],
    }


def services_lifecycle(world: World, i: int) -> str:
    """The 11 steps for unit ``i``; each loads what it needs, commits and ends its session."""
    session = db.session

    def person(person_id: int) -> Person:
        return session.get(Person, person_id)

    def step(fn):
        result = fn()
        session.commit()
        session.remove()
        return result

    case_id = world.case_ids[i]
    lead, executive, reviewer = world.lead_ids[i], world.executive_id, world.reviewer_id
    decision_id = step(lambda: propose(person(executive), session.get(EscalationCase, case_id)).id)
    step(lambda: decide(person(executive), session.get(Decision, decision_id)))
    plan_id = step(lambda: plans.start_plan(person(lead), session.get(EscalationCase, case_id)).id)

    def plan() -> RecoveryPlan:
        return session.get(RecoveryPlan, plan_id)

    def save_first():
        p = plan()
        plans.save_draft(person(lead), p, smart_data(world, i), p.lock_version)

    def return_it():
        p = plan()
        plans.return_for_changes(
            person(reviewer),
            p,
            "Good start; the first action needs dates.",
            {p.actions[0].id: "Which weekends, and from when?"},
        )

    def save_again():
        p = plan()
        data = plans.plan_data(p)
        data["actions"][0]["description"] += " every Saturday"
        data["actions"][0]["milestones"] = "09/01/2027 first Saturday list"
        plans.save_draft(person(lead), p, data, p.lock_version)

    step(save_first)
    step(lambda: plans.submit(person(lead), plan()))
    step(lambda: plans.start_review(person(reviewer), plan()))
    step(return_it)
    step(save_again)
    step(lambda: plans.submit(person(lead), plan()))
    step(lambda: plans.start_review(person(reviewer), plan()))
    step(lambda: plans.approve(person(reviewer), plan(), "Agreed at the Executive Team"))
    return plan_id


# --- SpiffWorkflow -----------------------------------------------------------------------


class SpiffRunner:
    """The BPMN lifecycle, its state stored in a table of the same SQLite file per step."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec("lifecycle")
        self.serializer = BpmnWorkflowSerializer()
        self.engine = engine
        self.table = sa.Table(
            "bench_spiff_workflows",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
        )
        self.table.drop(engine, checkfirst=True)
        self.table.create(engine)

    def lifecycle(self, world: World, i: int) -> tuple[bool, int]:
        """Run one instance through the 11 steps; (completed, final state size in bytes)."""
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        draft = json.loads(json.dumps(smart_data(world, i), default=str))
        step_data = {
            "propose": {"to_level": "2a", "reason": "Referral to treatment below target"},
            "decide": {"outcome": "approve", "reason": "Sustained deterioration"},
            "start_plan": {"case_id": world.case_ids[i]},
            "save_draft": {"plan": draft},
            "submit": {},
            "start_review": {},
        }
        outcomes = iter(
            [
                {"outcome": "returned", "note": "Good start; the first action needs dates."},
                {"outcome": "approved", "note": "Agreed at the Executive Team"},
            ]
        )
        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        with self.engine.begin() as conn:
            state = self.serializer.serialize_json(workflow)
            row_id = conn.execute(self.table.insert().values(state=state)).inserted_primary_key[0]
        for expected in STEPS:
            with self.engine.begin() as conn:
                state = conn.scalar(sa.select(self.table.c.state).where(self.table.c.id == row_id))
                workflow = self.serializer.deserialize_json(state)
                (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
                if task.task_spec.name != expected:
                    return False, len(state)
                data = next(outcomes) if expected == "review" else step_data[expected]
                task.data.update(data)
                task.run()
                workflow.do_engine_steps()
                state = self.serializer.serialize_json(workflow)
                conn.execute(
                    self.table.update().where(self.table.c.id == row_id).values(state=state)
                )
        return workflow.is_completed(), len(state)


def run(n: int = 100, profile: bool = False):
    with fresh_database("sqlite") as url, time_machine.travel(CLOCK, tick=True):
        app: Flask = make_app(url)
        t0 = time.perf_counter()
        world = build_world(app, n)
        setup_s = time.perf_counter() - t0
        profiler = cProfile.Profile() if profile else None
        with app.app_context():
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            plan_ids = [services_lifecycle(world, i) for i in range(n)]
            if profiler:
                profiler.disable()
            services_s = time.perf_counter() - start
            approved = db.session.scalar(
                sa.select(sa.func.count(RecoveryPlan.id)).where(
                    RecoveryPlan.id.in_(plan_ids), RecoveryPlan.status == "in_delivery"
                )
            )
            db.session.remove()
            spiff_s = spiff_per_s = size = None
            spiff_ok = True
            note = ""
            try:
                runner = SpiffRunner(db.engine)
            except ImportError as error:
                runner = None
                note = f"SpiffWorkflow not installed ({error}); pip install -e '.[bench]'"
            if runner is not None:
                start = time.perf_counter()
                results = [runner.lifecycle(world, i) for i in range(n)]
                spiff_s = time.perf_counter() - start
                spiff_per_s = n / spiff_s
                spiff_ok = all(done for done, _size in results)
                size = results[-1][1]
            db.engine.dispose()
    services_per_s = n / services_s
    ok = approved == n and spiff_ok
    profile_text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        profile_text = out.getvalue()
    result = LifecycleResult(
        n=n,
        setup_s=setup_s,
        services_s=services_s,
        services_per_s=services_per_s,
        spiff_s=spiff_s,
        spiff_per_s=spiff_per_s,
        ratio=services_per_s / spiff_per_s if spiff_per_s else None,
        check="OK" if ok else f"MISMATCH (approved plans {approved}, spiff completed {spiff_ok})",
        spiff_state_bytes=size,
        spiff_note=note,
    )
    return result, profile_text


NOTE = (
    "lifecycle = propose, decide, start plan, save, submit, start review, return, save, "
    "submit, start review,\n  approve: 11 steps, one transaction each; SpiffWorkflow = the "
    "same 11 user tasks of bench/lifecycle.bpmn,\n  state loaded, deserialized, advanced, "
    "serialized and stored in the same SQLite file at each step."
)


def format_table(results: list[LifecycleResult]) -> str:
    header = [
        "db",
        "lifecycles",
        "check",
        "services s",
        "services/s",
        "spiff s",
        "spiff/s",
        "ratio",
        "target",
    ]
    rows = [header]
    for r in results:
        rows.append(
            [
                "sqlite",
                f"{r.n:,}",
                r.check.split(" ")[0],
                f"{r.services_s:.2f}",
                f"{r.services_per_s:.2f}",
                f"{r.spiff_s:.2f}" if r.spiff_s else "-",
                f"{r.spiff_per_s:.2f}" if r.spiff_per_s else "-",
                f"{r.ratio:.2f}x" if r.ratio else "-",
                "-"
                if r.ratio is None
                else "met"
                if r.ratio >= TARGET
                else f"not met (>= {TARGET}x)",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(r: LifecycleResult) -> str:
    lines = [
        f"[sqlite] {r.n:,} lifecycles (setup {r.setup_s:.1f} s, not measured)",
        f"  services: {r.services_s:.2f} s = {r.services_per_s:.2f} lifecycles/s "
        f"({1000 * r.services_s / r.n / len(STEPS):.1f} ms a step) -> {r.check}",
    ]
    if r.spiff_s is None:
        lines.append(f"  SpiffWorkflow: not run: {r.spiff_note}")
    else:
        lines.append(
            f"  SpiffWorkflow: {r.spiff_s:.2f} s = {r.spiff_per_s:.2f} lifecycles/s "
            f"({1000 * r.spiff_s / r.n / len(STEPS):.1f} ms a step; final state "
            f"{r.spiff_state_bytes:,} bytes); services / Spiff = {r.ratio:.2f}x "
            f"(target >= {TARGET}x)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="lifecycles (default 100)")
    parser.add_argument("--profile", action="store_true", help="cProfile the services side")
    args = parser.parse_args(argv)
    result, profile_text = run(args.n, profile=args.profile)
    print(describe(result))
    print("  " + NOTE)
    print()
    print(format_table([result]))
    if profile_text:
        print()
        print(profile_text)
    return 0 if result.check == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
