"""The plan review-cycle machine: every legal move, every illegal one refused with a message."""

from __future__ import annotations

import pytest

from state_machines.plan_review import (
    EVENTS,
    STATUS_TITLES,
    IllegalPlanTransition,
    allowed_events,
    next_status,
)

LEGAL = [
    (status, event, dest) for event, (sources, dest, _) in EVENTS.items() for status in sources
]
ILLEGAL = [
    (status, event)
    for status in STATUS_TITLES
    for event, (sources, _, _) in EVENTS.items()
    if status not in sources
]


@pytest.mark.parametrize(("status", "event", "dest"), LEGAL)
def test_every_declared_move_is_made(status, event, dest):
    assert next_status(status, event) == dest
    assert event in allowed_events(status)


@pytest.mark.parametrize(("status", "event"), ILLEGAL)
def test_every_undeclared_move_is_refused_with_what_is_allowed(status, event):
    with pytest.raises(IllegalPlanTransition) as refused:
        next_status(status, event)
    message = str(refused.value)
    assert message.startswith("You cannot ")
    assert STATUS_TITLES[status].lower() in message
    for allowed in allowed_events(status):
        assert EVENTS[allowed][2] in message


def test_the_review_cycle_walks_from_draft_to_completed_through_a_return():
    status = "draft"
    for event in (
        "submit",
        "start_review",
        "return_for_changes",
        "submit",
        "start_review",
        "approve",
        "start_delivery",
        "mark_failing",
        "set_review_period",
        "back_on_track",
        "complete",
    ):
        status = next_status(status, event)
    assert status == "completed"
    assert allowed_events("completed") == []
    assert allowed_events("withdrawn") == []


def test_unknown_events_and_statuses_are_refused():
    with pytest.raises(IllegalPlanTransition):
        next_status("draft", "to_approved")  # no auto_transitions back door
    with pytest.raises(IllegalPlanTransition):
        next_status("lost", "submit")
