"""What a reviewer sees changed between two versions: fields, actions, trajectory, words."""

from __future__ import annotations

from datetime import date

from workflow_app.extensions import db
from workflow_app.services.plans import (
    plan_data,
    plan_diff,
    return_for_changes,
    save_draft,
    submit,
    word_diff,
)


def resubmit_with(world, plan, change) -> tuple:
    v1 = submit(world.lead, plan)
    db.session.commit()
    return_for_changes(world.reviewer, plan, "Changes please")
    db.session.commit()
    data = plan_data(plan)
    change(data)
    save_draft(world.lead, plan, data, plan.lock_version)
    v2 = submit(world.lead, plan)
    db.session.commit()
    return v1, v2


def test_word_level_differences():
    assert word_diff("Run weekend lists", "Run Saturday theatre lists") == (
        ("equal", "Run "),
        ("delete", "weekend"),
        ("insert", "Saturday theatre"),
        ("equal", " lists"),
    )
    assert word_diff("", "New text") == (("insert", "New text"),)
    assert word_diff("Same", "Same") == (("equal", "Same"),)


def test_identical_versions_have_no_changes(world, draft):
    v1, v2 = resubmit_with(world, draft, lambda data: None)
    diff = plan_diff(v1, v2)
    assert (diff.before, diff.after) == (1, 2)
    assert not diff.has_changes
    assert [a.change for a in diff.actions] == ["unchanged", "unchanged"]


def test_fields_actions_and_trajectory_are_compared(world, draft):
    def change(data):
        data["summary"] = data["summary"] + " Recovery by March."
        first, second = data["actions"]
        first["description"] = "Run Saturday theatre lists for orthopaedics"
        first["owner_id"] = world.reviewer.id
        first["due_on"] = date(2027, 3, 26)
        data["actions"] = [
            first,
            {**second, "id": None, "description": "Open a discharge lounge", "milestones": ""},
        ]
        data["trajectory"] = [
            {
                "measure_id": world.measures["RTT18"].id,
                "period": date(2026, 12, 1),
                "planned_value": 79,
            },
            {
                "measure_id": world.measures["RTT18"].id,
                "period": date(2027, 1, 1),
                "planned_value": 81,
            },
        ]

    v1, v2 = resubmit_with(world, draft, change)
    diff = plan_diff(v1, v2)
    assert diff.has_changes
    (summary,) = diff.fields
    assert summary.field == "summary" and summary.words[-1] == ("insert", " Recovery by March.")

    changed, added, removed = diff.actions
    assert (changed.change, changed.number_before, changed.number_after) == ("changed", 1, 1)
    by_field = {c.field: c for c in changed.fields}
    assert set(by_field) == {"description", "owner", "due_on"}
    assert by_field["description"].words == (
        ("equal", "Run "),
        ("delete", "weekend"),
        ("insert", "Saturday"),
        ("equal", " theatre lists for orthopaedics"),
    )
    assert (by_field["owner"].old, by_field["owner"].new) == ("Lee Lead", "Pat Performance")
    assert (by_field["due_on"].old, by_field["due_on"].new) == ("31 Mar 2027", "26 Mar 2027")
    assert (added.change, added.number_before, added.number_after) == ("added", None, 2)
    assert added.description == "Open a discharge lounge"
    assert (removed.change, removed.number_before, removed.number_after) == ("removed", 2, None)
    assert removed.description == "Validate the waiting list with every patient"

    assert [(t.period, t.old, t.new) for t in diff.trajectory] == [
        ("2026-12", "78", "79"),
        ("2027-01", None, "81"),
        ("2027-03", "85", None),
    ]


def test_a_moved_action_is_reported_as_moved(world, draft):
    v1, v2 = resubmit_with(world, draft, lambda data: data["actions"].reverse())
    diff = plan_diff(v1, v2)
    assert diff.has_changes
    assert [(a.number_before, a.number_after, a.moved) for a in diff.actions] == [
        (2, 1, True),
        (1, 2, True),
    ]


def test_the_first_version_against_nothing_is_all_added(world, draft):
    v1 = submit(world.lead, draft)
    diff = plan_diff(None, v1)
    assert [a.change for a in diff.actions] == ["added", "added"]
    assert {c.field for c in diff.fields} >= {"summary", "risk_assessment"}
