"""Cadence meetings (issue #7): for each level of framework A (1, 2a, 2b, 3 with and without
the CEO progress meetings option) and framework B (NHS Wales levels 1-5), the occurrences of
the cadence that are meetings are requested, linked to their obligation; a level change
cancels the old level's requested meetings and plans the new level's; re-running creates
nothing twice. Framework A's base cadence (5.4, 5.5.3): quarterly directorate reviews whose
Q2 and Q4 meetings are the six-monthly reviews chaired by the CEO, ending with agreed action
notes and the chair's letter."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.meetings.cadence_fixtures import (
    NOW,
    case_of,
    make_board,
    meetings_of,
    move,
    summary,
)
from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.meetings import Meeting
from workflow_app.services.cadence import top_up_all_cadences
from workflow_app.services.meeting_cadence import (
    CADENCE_MEETINGS,
    plan_all_cadence_meetings,
    plan_cadence_meetings,
)
from workflow_app.services.meetings import record_outcome, schedule_meeting

Q3 = date(2026, 12, 31)  # Thursday: the last working day of Q3 2026/27
Q4 = date(2027, 3, 31)  # Wednesday: Q4, the six-monthly review


@pytest.fixture
def cadence_board(create_person, create_unit, clock):
    clock.move_to(NOW)
    return make_board(create_person, create_unit)


def invited(meeting: Meeting) -> dict[str, str]:
    return {i.person.name: i.role for i in meeting.invitees}


# --- framework A, Level 1: the base cadence -----------------------------------------------


def test_level_1_has_the_base_cadence_quarterly_and_six_monthly_reviews(cadence_board):
    board = cadence_board
    assert plan_all_cadence_meetings(NOW) == 2
    db.session.commit()
    quarterly, six_monthly = meetings_of(board.unit)
    assert summary([quarterly, six_monthly]) == [
        ("directorate_review", "requested", Q3),
        ("six_monthly_review", "requested", Q4),
    ]
    # 5.5.3: the quarterly review is chaired by the directorate's executive ...
    assert quarterly.chair == board.execs[0]
    assert invited(quarterly) == {
        "Eve Exec": "chair",
        "Lee Lead": "unit_lead",
        "Bea Budget": "budget_holder",
    }
    assert quarterly.title == "Quarterly directorate review: Surgery (Q3 2026/27)"
    # ... the six-monthly one by the CEO with the full Executive Team.
    assert six_monthly.chair == board.ceo
    assert invited(six_monthly) == {
        "Carys Chief": "chair",
        "Eve Exec": "executive_director",
        "Finn Finance": "executive_director",
        "Lee Lead": "unit_lead",
        "Bea Budget": "budget_holder",
    }
    assert six_monthly.case == case_of(board.unit, "performance")
    assert quarterly.deadline is None  # the base cadence has no obligation rows of its own
    # Re-running (the daily top-up) creates nothing twice.
    assert plan_all_cadence_meetings(NOW) == 0
    top_up_all_cadences(NOW)
    assert len(meetings_of(board.unit)) == 2
    # NHS Wales has no base review series: its meetings come from the level's cadence.
    assert {m.kind for m in meetings_of(board.wales)} == {"executive_review"}


def test_the_base_cadence_rolls_on_quarter_by_quarter(cadence_board, clock):
    board = cadence_board
    plan_all_cadence_meetings(NOW)
    later = NOW + timedelta(days=90)  # 13 January 2027: Q3 is over
    clock.move_to(later)
    plan_all_cadence_meetings(later)
    db.session.commit()
    assert [(m.kind, m.hold_by) for m in meetings_of(board.unit)] == [
        ("directorate_review", Q3),  # left as it was (never scheduled; its quarter is over)
        ("six_monthly_review", Q4),
        ("directorate_review", date(2027, 6, 30)),
    ]


def test_a_unit_late_in_a_quarter_starts_with_the_next_one(cadence_board, clock):
    board = cadence_board
    late = NOW.replace(month=12, day=21)  # 21 December: fewer than 10 working days to Q3's end
    clock.move_to(late)
    plan_cadence_meetings(board.unit, now=late)
    assert [m.hold_by for m in meetings_of(board.unit)] == [Q4, date(2027, 6, 30)]


def test_commissioned_providers_have_no_directorate_review_series(cadence_board, create_unit):
    provider = create_unit(code="CP1", kind="commissioned_provider")
    assert plan_cadence_meetings(provider, now=NOW).requested == []


def test_the_six_monthly_review_ends_with_action_notes_and_the_chairs_letter(cadence_board, clock):
    board = cadence_board
    plan_all_cadence_meetings(NOW)
    db.session.commit()
    (review,) = meetings_of(board.unit, kind="six_monthly_review")
    starts = NOW + timedelta(days=20)
    schedule_meeting(board.ceo, review, starts, now=NOW)
    db.session.commit()
    clock.move_to(starts + timedelta(hours=2))
    meeting, plan, letter = record_outcome(
        board.ceo,
        review,
        "Deep dive into theatre utilisation; highest rated risks reviewed.",
        "- Theatre list planning to be reviewed\n- Vacancy controls to continue",
        now=starts + timedelta(hours=2),
    )
    db.session.commit()
    assert meeting.status == "held"
    assert plan is not None and plan.kind == "action_plan"  # the agreed action notes
    assert letter is not None and letter.kind == "chair_letter"
    assert letter.case_id == case_of(board.unit, "performance").id
    assert db.session.scalar(sa.select(sa.func.count(Letter.id))) == 1


# --- framework A, Levels 2a, 2b and 3 ---------------------------------------------------------


def test_level_2a_adds_updates_but_no_meetings(cadence_board):
    board = cadence_board
    move(board, board.unit, "performance", "2a", now=NOW)
    assert meetings_of(board.unit) == []  # 2a's cadence has no meeting
    top_up_all_cadences(NOW)  # the base cadence runs at every level (daily top-up)
    assert summary(meetings_of(board.unit)) == [
        ("directorate_review", "requested", Q3),
        ("six_monthly_review", "requested", Q4),
    ]
    updates = db.session.scalars(
        sa.select(Deadline).where(Deadline.kind == "cadence:executive_committee_update")
    ).all()
    assert len(updates) == 2  # obligations, not meetings
    assert all(m.deadline is None for m in meetings_of(board.unit))


def test_level_2b_has_the_budget_review_and_no_cadence_meeting(cadence_board):
    board = cadence_board
    move(board, board.unit, "finance", "2b", now=NOW)
    assert [m.kind for m in meetings_of(board.unit)] == ["budget_review"]
    top_up_all_cadences(NOW)
    assert sorted(m.kind for m in meetings_of(board.unit)) == [
        "budget_review",  # the 2b decision's consequence (meeting core)
        "directorate_review",
        "six_monthly_review",
    ]
    reports = db.session.scalars(
        sa.select(Deadline).where(Deadline.kind == "cadence:financial_reporting")
    ).all()
    assert len(reports) == 2
    assert all(
        m.deadline is None or not m.deadline.kind.startswith("cadence:")
        for m in meetings_of(board.unit)
    )


def test_level_3_without_the_progress_meetings_option_has_none(cadence_board):
    board = cadence_board
    move(board, board.unit, "performance", "3", now=NOW)
    top_up_all_cadences(NOW)
    assert meetings_of(board.unit, kind="ceo_progress") == []
    assert {m.kind for m in meetings_of(board.unit)} == {
        "directorate_review",
        "six_monthly_review",
    }


@pytest.mark.parametrize(
    ("every", "hold_by"),
    [
        ("1 week", [date(2026, 10, 22), date(2026, 10, 29)]),
        ("2 weeks", [date(2026, 10, 29), date(2026, 11, 12)]),
    ],
)
def test_level_3_with_ceo_progress_meetings(cadence_board, every, hold_by):
    board = cadence_board
    move(
        board,
        board.unit,
        "performance",
        "3",
        now=NOW,
        support_options={"ceo_progress_meetings": {"every": every}},
    )
    progress = meetings_of(board.unit, kind="ceo_progress")
    assert [(m.status, m.hold_by) for m in progress] == [("requested", d) for d in hold_by]
    for meeting in progress:
        assert meeting.chair == board.ceo
        assert meeting.deadline.kind == "cadence:ceo_progress_meeting"
        assert meeting.deadline.due_at.date() == meeting.hold_by
        assert meeting.case == case_of(board.unit, "performance")
        assert invited(meeting) == {
            "Carys Chief": "chair",
            "Eve Exec": "executive_director",
            "Lee Lead": "unit_lead",
            "Bea Budget": "budget_holder",
        }
    assert progress[0].title == "Progress meeting with the CEO: Surgery (Performance, Level 3)"
    # The daily top-up creates nothing twice.
    top_up_all_cadences(NOW)
    db.session.commit()
    assert len(meetings_of(board.unit, kind="ceo_progress")) == 2
    # Holding one discharges its obligation; the top-up then plans the next occurrence.


def test_holding_a_progress_meeting_meets_the_obligation_and_the_next_is_planned(
    cadence_board, clock
):
    board = cadence_board
    move(
        board,
        board.unit,
        "performance",
        "3",
        now=NOW,
        support_options={"ceo_progress_meetings": {"every": "1 week"}},
    )
    first = meetings_of(board.unit, kind="ceo_progress")[0]
    starts = NOW + timedelta(days=5)  # Tuesday 20 October, 10:00 London
    schedule_meeting(board.ceo, first, starts, now=NOW)
    clock.move_to(starts + timedelta(hours=1))
    record_outcome(board.ceo, first, "Actions reviewed.", "- On track", now=starts)
    assert first.deadline.status == "done"
    later = NOW + timedelta(days=8)  # the first occurrence (22 October) is past
    clock.move_to(later)
    top_up_all_cadences(later)
    db.session.commit()
    assert [(m.status, m.hold_by) for m in meetings_of(board.unit, kind="ceo_progress")] == [
        ("held", date(2026, 10, 22)),
        ("requested", date(2026, 10, 29)),
        ("requested", date(2026, 11, 5)),
    ]


def test_a_level_change_cancels_the_old_levels_requested_meetings(cadence_board, clock):
    board = cadence_board
    move(
        board,
        board.unit,
        "performance",
        "3",
        now=NOW,
        support_options={"ceo_progress_meetings": {"every": "1 week"}},
    )
    first, second = meetings_of(board.unit, kind="ceo_progress")
    schedule_meeting(board.ceo, first, NOW + timedelta(days=5), now=NOW)
    db.session.commit()
    # Three days later the unit steps down to 2a: no progress meetings at 2a.
    later = NOW + timedelta(days=3)
    clock.move_to(later)
    move(board, board.unit, "performance", "2a", now=later, signers=[board.execs[0]])
    db.session.refresh(second)
    assert second.status == "cancelled"
    assert second.cancelled_reason == "Cadence changed: level changed to Level 2a"
    assert second.deadline.status == "cancelled"
    assert first.status == "scheduled"  # in the diary: left to its chair
    assert [m.status for m in meetings_of(board.unit, kind="ceo_progress")] == [
        "scheduled",
        "cancelled",
    ]
    # Back to 3 with fortnightly meetings: the new level's are planned.
    again = later + timedelta(days=1)
    clock.move_to(again)
    move(
        board,
        board.unit,
        "performance",
        "3",
        now=again,
        support_options={"ceo_progress_meetings": {"every": "2 weeks"}},
    )
    requested = meetings_of(board.unit, kind="ceo_progress", status="requested")
    assert [m.hold_by for m in requested] == [date(2026, 11, 2), date(2026, 11, 16)]
    # Nothing doubles on re-run; the base cadence was there throughout.
    top_up_all_cadences(again)
    plan_all_cadence_meetings(again)
    db.session.commit()
    assert len(meetings_of(board.unit, kind="ceo_progress", status="requested")) == 2
    assert [m.kind for m in meetings_of(board.unit, status="requested")].count(
        "directorate_review"
    ) == 1


# --- framework B: NHS Wales, each level -------------------------------------------------------

WALES_SIGNERS = {"2": "dg", "3": "dg", "4": "dg+minister", "5": "dg+minister"}


def wales_signers(board, level: str):
    if WALES_SIGNERS[level] == "dg":
        return [board.director_general]
    return [board.director_general, board.minister]


@pytest.mark.parametrize(
    ("level", "hold_by"),
    [
        ("1", [date(2027, 4, 15), date(2027, 10, 15)]),  # from the case's opening
        ("2", [date(2027, 4, 15), date(2027, 10, 15)]),
        ("3", [date(2027, 1, 15), date(2027, 4, 15)]),
        ("4", [date(2026, 12, 15), date(2027, 2, 15)]),
        ("5", [date(2026, 11, 16), date(2026, 12, 15)]),  # 15 November is a Sunday
    ],
)
def test_nhs_wales_executive_review_at_each_level(cadence_board, level, hold_by):
    board = cadence_board
    if level == "1":
        top_up_all_cadences(NOW)  # the case opened at Level 1 today
    else:
        move(board, board.wales, "quality", level, now=NOW, signers=wales_signers(board, level))
    reviews = meetings_of(board.wales, kind="executive_review")
    # One series for the organisation (not one per pillar), driven by its highest case.
    assert [m.hold_by for m in reviews] == hold_by
    assert {m.case.track for m in reviews} == {"quality"}
    for meeting in reviews:
        assert meeting.status == "requested"
        assert meeting.chair == board.director_general  # "with NHS Wales CEO"
        assert meeting.deadline.kind == "cadence:ceo_executive_review"
        assert invited(meeting)["Owain Org"] == "executive_director"
    # The monthly oversight touchpoint is an obligation, not a meeting of this unit.
    assert "oversight_touchpoint" not in CADENCE_MEETINGS
    assert {m.kind for m in meetings_of(board.wales)} - {"executive_review"} <= {
        "whole_board_meeting"  # Level 5's consequence (meeting core)
    }
    top_up_all_cadences(NOW)
    assert len(meetings_of(board.wales, kind="executive_review")) == len(reviews)


def test_nhs_wales_level_changes_move_the_review_series(cadence_board, clock):
    board = cadence_board
    top_up_all_cadences(NOW)
    db.session.commit()
    routine = meetings_of(board.wales, kind="executive_review")
    assert len(routine) == 2
    # Quality escalates to 3 (enhanced monitoring): the 6-monthly reviews give way to quarterly.
    move(board, board.wales, "quality", "3", now=NOW, signers=[board.director_general])
    for meeting in routine:
        db.session.refresh(meeting)
        assert meeting.status == "cancelled"
        assert meeting.cancelled_reason.startswith("Cadence changed:")
    requested = meetings_of(board.wales, kind="executive_review", status="requested")
    assert [m.hold_by for m in requested] == [date(2027, 1, 15), date(2027, 4, 15)]
    assert {m.case.track for m in requested} == {"quality"}
    # Finance goes to 4 (targeted intervention): the 2-monthly finance series drives now.
    later = NOW + timedelta(days=1)
    clock.move_to(later)
    move(board, board.wales, "finance", "4", now=later, signers=wales_signers(board, "4"))
    requested = meetings_of(board.wales, kind="executive_review", status="requested")
    assert [(m.case.track, m.hold_by) for m in requested] == [
        ("finance", date(2026, 12, 16)),
        ("finance", date(2027, 2, 16)),
    ]
    quality = [
        m for m in meetings_of(board.wales, kind="executive_review") if m.case.track == "quality"
    ]
    assert {m.status for m in quality} == {"cancelled"}
    at_3 = [m for m in quality if m not in routine]
    assert [m.cancelled_reason for m in at_3] == [
        "Cadence changed: the review now follows Finance at Targeted intervention"
    ] * 2
    # Finance steps down to 3: quality (3, first in track order) drives again, afresh.
    again = later + timedelta(days=1)
    clock.move_to(again)
    move(board, board.wales, "finance", "3", now=again, signers=[board.director_general])
    requested = meetings_of(board.wales, kind="executive_review", status="requested")
    assert [(m.case.track, m.hold_by) for m in requested] == [
        ("quality", date(2027, 1, 15)),
        ("quality", date(2027, 4, 15)),
    ]
    assert all(m.dedupe_key.endswith(":2") for m in requested)
    top_up_all_cadences(again)
    db.session.commit()
    assert len(meetings_of(board.wales, kind="executive_review", status="requested")) == 2
