"""Browser: Framework C (system performance tiers) decisions end to end through the real pages.

Two months under target propose an improvement plan for the measure: the planning and
performance lead signs it, and the letter, deadlines and e-mails follow. Then: the target met
again steps the measure down one tier, a rejection, a delegate's signature, and refusals (the
directorate lead, a committee member, a tier the framework does not allow) that change nothing.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.browser.journeys import (
    add_domain,
    add_person,
    add_unit,
    case_of,
    decision_emails,
    delegate,
    normalise,
    pending_decision_id,
)
from tests.conftest import PASSWORD
from workflow_app.extensions import db

pytestmark = pytest.mark.browser

UNIT = "Elective Care"
TRACK = "measure:RTT18"

ANALYST = "pat@example.nhs.uk"  # performance team: the performance lead's rule
EXEC = "eve@example.nhs.uk"  # the unit's accountable executive
LEAD = "lee@example.nhs.uk"  # the unit's lead
COMMITTEE = "cal@example.nhs.uk"
DEPUTY = "dee@example.nhs.uk"  # a committee member covering the analyst's leave
ADMIN = "admin@example.nhs.uk"
SIGNERS = "Performance team or Executive Director"


@pytest.fixture
def tiers(journey):
    """An analyst, an executive, the lead, committee members, an administrator, and the
    Elective Care unit with its RTT measure: on target until two months under in Sep-Oct."""
    from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue

    def setup():
        analyst = add_person("Pat Analyst", ANALYST, "performance_team")
        exec_ = add_person("Eve Exec", EXEC, "executive_director")
        lead = add_person("Lee Lead", LEAD, "directorate_lead")
        add_person("Cal Committee", COMMITTEE, "committee_member")
        deputy = add_person("Dee Deputy", DEPUTY, "committee_member")
        add_person("Ada Admin", ADMIN, "system_admin")
        unit = add_unit(
            "ELEC",
            UNIT,
            "system_tiers",
            "operational_directorate",
            lead_id=lead.id,
            accountable_executive_id=exec_.id,
        )
        measure = Measure(
            unit_id=unit.id,
            domain_id=add_domain("access_activity", "Access & Activity").id,
            code="RTT18",
            name="RTT within 18 weeks",
            target=92,
            direction="higher_is_better",
            unit_of_measure="percent",
            kind="national_target",
        )
        db.session.add(measure)
        db.session.flush()
        for month, value in ((5, 93), (6, 94), (7, 93), (8, 92.5), (9, 89), (10, 88)):
            period = date(2026, month, 1)
            db.session.add(MonthlyActual(measure_id=measure.id, period=period, value=value))
            db.session.add(TrajectoryValue(measure_id=measure.id, period=period, value=92))
        delegate(analyst, deputy, "performance_team")
        db.session.commit()

    journey.db(setup)
    return journey


def review(journey, period: date) -> int:
    """Run the month's review; the pending proposal on the RTT measure."""
    from workflow_app.services.review import run_review

    def work():
        run_review(period)
        db.session.commit()
        return pending_decision_id("ELEC", TRACK)

    return journey.db(work)


def two_months_under_proposal(journey) -> int:
    return review(journey, date(2026, 10, 1))


def test_two_months_under_target_to_an_improvement_plan_with_letter_deadlines_and_emails(tiers):
    j = tiers
    two_months_under_proposal(j)

    j.sign_in(ANALYST)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert "Measure (RTT18)" in row.inner_text() and "as Performance team" in row.inner_text()
    j.open_decision(UNIT)
    assert j.heading() == "Performing → Improvement plan required"
    main = j.main_text()
    assert "Evidence" in main and "RTT within 18 weeks" in main  # the monthly values table
    assert "the monthly review (two_months_under)" in main
    why = normalise(j.section("Why"))
    j.sign(
        "Approve: move to Improvement plan required",
        "Agreed at the planning and performance meeting",
    )
    assert j.banner() == (
        "Approved: Elective Care's Measure (RTT18) track is now at Improvement plan required. "
        "The letter and deadlines have been created."
    )
    assert "Signed by Pat Analyst as Performance team on" in j.main_text()

    j.open_case_from_decision()
    assert j.heading() == "Measure: RTT18"
    assert "Current level: Improvement plan required since" in j.current_level_text()
    deadlines = j.section("Deadlines")
    assert "Improvement plan due" in deadlines and "Risk assessment due" in deadlines
    letter = normalise(j.open_letter("Improvement plan required"))
    assert UNIT in letter and "RTT within 18 weeks" in letter
    assert why in letter  # the reasons, as the review wrote them
    assert "Pat Analyst" in letter and "Performance team" in letter  # the signature block

    subject = "Elective Care: Measure now at Improvement plan required"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert sorted((m["to"], m["status"]) for m in mails) == [(EXEC, "held"), (LEAD, "held")]
    assert j.db(decision_emails) == [(EXEC, subject, "held"), (LEAD, subject, "held")]


def test_the_target_met_again_steps_the_measure_down_one_tier(tiers):
    from workflow_app.models.cases import Decision
    from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue
    from workflow_app.models.org import Person
    from workflow_app.services.decisions import decide_proposal

    j = tiers
    up = two_months_under_proposal(j)

    def approve_and_report_november():
        decide_proposal(
            db.session.scalar(db.select(Person).where(Person.email == ANALYST)),
            db.session.get(Decision, up),
            outcome="approve",
            reason="Agreed",
            password=PASSWORD,
        )
        measure = db.session.scalar(db.select(Measure).where(Measure.code == "RTT18"))
        november = date(2026, 11, 1)
        # Back above target, and enough that the forecast no longer predicts failure.
        db.session.add(MonthlyActual(measure_id=measure.id, period=november, value=99))
        db.session.add(TrajectoryValue(measure_id=measure.id, period=november, value=92))
        db.session.commit()

    j.db(approve_and_report_november)
    review(j, date(2026, 11, 1))

    j.sign_in(ANALYST)
    j.open_decisions()
    j.open_decision(UNIT)
    assert j.heading() == "Improvement plan required → Monitor"
    assert "the monthly review (target_met)" in j.main_text()
    j.sign("Approve: move to Monitor", "Target met in November; plan actions on track")
    assert j.banner() == (
        "Approved: Elective Care's Measure (RTT18) track is now at Monitor. "
        "The letter has been created."
    )
    j.open_case_from_decision()
    assert "Current level: Monitor since" in j.current_level_text()
    assert "Improvement plan required → Monitor" in j.section("Level history")
    letters = j.section("Letters")
    assert "Improvement plan required" in letters and "De escalation" in letters
    letter = normalise(j.open_letter("De escalation"))
    assert "De-escalation to Monitor: Elective Care" in letter
    assert "Pat Analyst" in letter
    subject = "Elective Care: Measure now at Monitor"
    assert sorted(m["to"] for m in j.outbox(ADMIN) if m["subject"] == subject) == [EXEC, LEAD]


def test_the_performance_lead_rejects_and_the_measure_stays_performing(tiers):
    j = tiers
    two_months_under_proposal(j)
    before = j.snapshot("ELEC")

    j.sign_in(ANALYST)
    j.open_decisions()
    j.open_decision(UNIT)
    j.sign("Reject", "Validation backlog explains the dip; October figures to be resubmitted")
    assert j.banner() == "Rejected: Elective Care's Measure (RTT18) track stays at Performing."
    assert "Rejected: Validation backlog explains the dip" in j.main_text()
    j.open_case_from_decision()
    assert "Current level: Performing since" in j.current_level_text()
    assert "No letters on this case yet." in j.section("Letters")
    assert "(rejected)" in j.section("Decisions")
    j.assert_rejection_changed_nothing("ELEC", before)


def test_a_delegate_signs_for_the_performance_lead(tiers):
    j = tiers
    two_months_under_proposal(j)

    j.sign_in(DEPUTY)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert "as Performance team (delegate of Pat Analyst)" in normalise(row.inner_text())
    j.open_decision(UNIT)
    assert "You sign as Performance team, as delegate of Pat Analyst." in j.main_text()
    j.sign("Approve: move to Improvement plan required", "Agreed in Pat's absence")
    assert "is now at Improvement plan required" in j.banner()
    assert "Signed by Dee Deputy as Performance team as delegate of Pat Analyst" in (j.main_text())
    j.open_case_from_decision()
    assert "(delegate of Pat Analyst)" in j.section("Decisions")
    assert "Improvement plan due" in j.section("Deadlines")
    letter = normalise(j.open_letter("Improvement plan required"))
    assert "Signed by Dee Deputy as delegate of Pat Analyst" in letter
    subject = "Elective Care: Measure now at Improvement plan required"
    assert sorted(to for to, s, _ in j.db(decision_emails) if s == subject) == [EXEC, LEAD]


def test_the_lead_and_a_committee_member_cannot_sign_and_nothing_changes(tiers):
    j = tiers
    decision_id = two_months_under_proposal(j)
    before = j.snapshot("ELEC")
    refusal = (
        f"This decision needs {SIGNERS} to sign it. Your roles do not allow you to sign it, "
        "so nothing was signed."
    )
    forged = {"outcome": "approve", "reason": "Yes", "password": PASSWORD}

    j.sign_in(COMMITTEE)
    j.open_decisions()
    assert "Nothing is waiting for your signature." in j.decisions_table("mine").inner_text()
    j.open_decision(UNIT, "others")
    assert refusal in j.main_text()
    assert j.page.get_by_role("button", name="Sign the decision").count() == 0
    response = j.post_sign_form_by_hand(decision_id, forged)
    assert response.status == 403 and refusal in j.main_text()
    assert j.snapshot("ELEC") == before

    j.sign_in(LEAD)
    j.page.goto(f"{j.base_url}/decisions/{decision_id}")
    assert refusal in j.main_text()
    response = j.post_sign_form_by_hand(decision_id, forged)
    assert response.status == 403 and refusal in j.main_text()
    assert j.snapshot("ELEC") == before


def test_approving_a_tier_the_framework_does_not_allow_is_refused(tiers):
    j = tiers
    two_months_under_proposal(j)
    before = j.snapshot("ELEC")

    j.sign_in(ANALYST)
    j.open_decisions()
    j.open_decision(UNIT)
    other = j.page.get_by_label("Approve at this level instead")
    assert other.locator("option").all_inner_texts() == ["Choose a level", "Monitor"]
    other.evaluate("(select) => select.add(new Option('1st-level escalation', 'first_level'))")
    status = j.sign("Approve at a different level", "Skip to executives", other_level="first_level")
    assert status == 400
    assert "The framework does not allow a move to that level from here" in j.problem()
    assert j.snapshot("ELEC") == before

    # Monitor, which the framework does allow from Performing, is accepted instead.
    j.sign("Approve at a different level", "One month of tolerance first", other_level="monitor")
    assert j.banner() == "Approved: Elective Care's Measure (RTT18) track is now at Monitor."
    assert j.db(lambda: case_of("ELEC", TRACK).level) == "monitor"
