"""The SMART check: each missing letter gives a precise message, in the framework's spelling."""

from __future__ import annotations

from datetime import date

import pytest

from workflow_app.services.plans import check_smart, smart_words

TODAY = date(2026, 11, 23)


def first_action(world, **changes):
    data = world.smart_data()
    data["actions"][0].update(changes)
    return data


def test_a_complete_plan_passes(world):
    assert check_smart(world.smart_data(), "iqpf", unit=world.unit, today=TODAY) == {}


@pytest.mark.parametrize(
    ("framework", "expected"),
    [
        ("iqpf", ["Specific", "Measurable", "Achievable", "Relevant", "Time-bound"]),
        ("nhs_wales", ["Specific", "Measurable", "Achievable", "Relevant", "Time-bound"]),
        ("system_tiers", ["Specific", "Measurable", "Agreed", "Realistic", "Time-bound"]),
    ],
)
def test_the_words_follow_the_framework_file(framework, expected):
    assert list(smart_words(framework).values()) == expected


# (changes to action 1, the key, the message with {A} / {R} for the framework's word)
ACTION_CASES = [
    (
        {"description": "  "},
        "actions-0-description",
        "Action 1 is not Specific: say what will be done",
    ),
    (
        {"measure_id": None, "expected_effect": ""},
        "actions-0-measure_id",
        "Action 1 is not Measurable: choose the measure it moves and say by how much",
    ),
    (
        {"measure_id": None},
        "actions-0-measure_id",
        "Action 1 is not Measurable: choose the measure it moves",
    ),
    (
        {"expected_effect": ""},
        "actions-0-expected_effect",
        "Action 1 is not Measurable: say by how much it will move RTT18 "
        "(Referral to treatment in 18 weeks)",
    ),
    (
        {"owner_id": None},
        "actions-0-owner_id",
        "Action 1 is not {A}: name the owner who will deliver it",
    ),
    (
        {"resources": ""},
        "actions-0-resources",
        "Action 1 is not {A}: say what resources it needs (people, money, time)",
    ),
    (
        {"domain_id": None},
        "actions-0-domain_id",
        "Action 1 is not {R}: choose the domain it serves",
    ),
    ({"due_on": None}, "actions-0-due_on", "Action 1 is not Time-bound: give a due date"),
    (
        {"due_on": TODAY},
        "actions-0-due_on",
        "Action 1 is not Time-bound: the due date must be after today",
    ),
    (
        {"due_on": date(2026, 10, 1)},
        "actions-0-due_on",
        "Action 1 is not Time-bound: the due date must be after today",
    ),
    (
        {"due_on": date(2028, 4, 1)},
        "actions-0-due_on",
        "Action 1 is not Time-bound: the due date must be no later than 31 March 2028, the end "
        "of the next financial year",
    ),
]


@pytest.mark.parametrize(
    ("framework", "achievable", "relevant"),
    [("iqpf", "Achievable", "Relevant"), ("system_tiers", "Agreed", "Realistic")],
)
@pytest.mark.parametrize(("changes", "key", "message"), ACTION_CASES)
def test_each_letter_of_smart_per_action(
    world, framework, achievable, relevant, changes, key, message
):
    errors = check_smart(first_action(world, **changes), framework, unit=world.unit, today=TODAY)
    assert errors == {key: message.format(A=achievable, R=relevant)}


def test_the_last_day_of_the_next_financial_year_is_allowed(world):
    data = first_action(world, due_on=date(2028, 3, 31))
    assert check_smart(data, "iqpf", unit=world.unit, today=TODAY) == {}


def test_milestones_and_deliverable_are_optional(world):
    data = first_action(world, milestones="", deliverable="")
    assert check_smart(data, "iqpf", unit=world.unit, today=TODAY) == {}


def test_the_second_action_is_named_by_its_number(world):
    data = world.smart_data()
    data["actions"][1].update(measure_id=None, expected_effect="", due_on=None)
    assert check_smart(data, "iqpf", unit=world.unit, today=TODAY) == {
        "actions-1-measure_id": "Action 2 is not Measurable: choose the measure it moves and "
        "say by how much",
        "actions-1-due_on": "Action 2 is not Time-bound: give a due date",
    }


def test_a_measure_of_another_unit_is_not_measurable(world):
    data = first_action(world, measure_id=world.measures["foreign"].id)
    errors = check_smart(data, "iqpf", unit=world.unit, today=TODAY)
    assert errors["actions-0-measure_id"] == (
        "Action 1 is not Measurable: choose one of Surgery's measures"
    )


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("summary", "Write a summary of the plan"),
        (
            "risk_assessment",
            "Write the risk assessment: the risks to quality and safety and how they are managed",
        ),
        ("risk_level", "Choose the level of risk to quality and safety"),
    ],
)
def test_the_plan_needs_a_summary_and_a_risk_assessment(world, field, message):
    data = world.smart_data(**{field: None if field == "risk_level" else " "})
    assert check_smart(data, "iqpf", unit=world.unit, today=TODAY) == {field: message}


def test_the_plan_needs_an_action(world):
    data = world.smart_data(actions=[], trajectory=[])
    assert check_smart(data, "iqpf", unit=world.unit, today=TODAY) == {
        "actions": "Add at least one action"
    }


def test_every_measure_an_action_moves_needs_a_planned_value(world):
    data = world.smart_data()
    data["actions"][1]["measure_id"] = world.measures["ED4"].id
    errors = check_smart(data, "iqpf", unit=world.unit, today=TODAY)
    assert errors == {
        f"trajectory-{world.measures['ED4'].id}": "Give at least one planned value for ED4 "
        "(Four-hour A&E) in the trajectory: action 2 moves it"
    }


def test_an_empty_plan_lists_every_problem_in_order(world):
    data = world.smart_data(
        summary="",
        risk_assessment="",
        risk_level=None,
        actions=[{"description": "Something"}],
        trajectory=[],
    )
    errors = check_smart(data, "system_tiers", unit=world.unit, today=TODAY)
    assert list(errors) == [
        "summary",
        "risk_assessment",
        "risk_level",
        "actions-0-measure_id",
        "actions-0-owner_id",
        "actions-0-resources",
        "actions-0-domain_id",
        "actions-0-due_on",
    ]
    assert errors["actions-0-owner_id"].startswith("Action 1 is not Agreed")


def test_the_check_reads_a_stored_plan_too(world, draft):
    assert check_smart(draft, today=TODAY) == {}
    draft.actions[0].owner_id = None
    assert check_smart(draft, today=TODAY) == {
        "actions-0-owner_id": "Action 1 is not Achievable: name the owner who will deliver it"
    }
