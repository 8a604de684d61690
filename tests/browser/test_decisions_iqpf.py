"""Browser: Framework A (IQPF) decisions end to end through the real pages.

Proposal -> decision -> letter -> deadlines -> notifications for a 1 -> 2a escalation (the
concern recorded and the review run through the UI), a 2a -> 1 de-escalation raised by hand, a
rejection, the CEO's decision signed by a delegate, and refusals (wrong role, directorate lead,
a level the framework does not allow) that change nothing.
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

OCT = date(2026, 10, 1)
UNIT = "Unscheduled Care"
MEETING = "Executive Team, 18 November 2026, item 4"

CEO = "ceo@example.nhs.uk"
EXEC = "exec@example.nhs.uk"  # the unit's accountable executive
OTHER_EXEC = "ed@example.nhs.uk"
LEAD = "lead@example.nhs.uk"  # the unit's lead and budget holder
DEPUTY = "dee@example.nhs.uk"
ANALYST = "pat@example.nhs.uk"
ADMIN = "admin@example.nhs.uk"


@pytest.fixture
def iqpf(journey):
    """The board, an administrator, an analyst and the Unscheduled Care directorate."""

    def setup():
        ceo = add_person("Carys Chief", CEO, "ceo")
        exec_ = add_person("Eve Exec", EXEC, "executive_director")
        add_person("Ed Other", OTHER_EXEC, "executive_director")
        lead = add_person("Lee Lead", LEAD, "directorate_lead")
        deputy = add_person("Dee Deputy", DEPUTY, "executive_director")
        add_person("Pat Analyst", ANALYST, "performance_team")
        add_person("Ada Admin", ADMIN, "system_admin")
        add_domain("quality_safety_experience", "Quality, safety & patient experience")
        add_unit(
            "UNSCH",
            UNIT,
            "iqpf",
            "operational_directorate",
            lead_id=lead.id,
            accountable_executive_id=exec_.id,
            budget_holder_id=lead.id,
        )
        delegate(ceo, deputy, "ceo")
        db.session.commit()

    journey.db(setup)
    return journey


def overspend_proposal(journey) -> int:
    """The monthly review proposes Finance 1 -> 2b (the CEO's decision) on an overspend."""
    from workflow_app.models.measures import FinancePosition
    from workflow_app.models.org import Unit
    from workflow_app.services.review import run_review

    def work():
        unit = db.session.scalar(db.select(Unit).where(Unit.code == "UNSCH"))
        db.session.add(
            FinancePosition(
                unit_id=unit.id, period=OCT, ytd_variance=742_310, forecast_variance=968_400
            )
        )
        db.session.flush()
        run_review(OCT)
        db.session.commit()
        return pending_decision_id("UNSCH", "finance")

    return journey.db(work)


def performance_proposal(journey) -> int:
    """Performance 1 -> 2a raised by hand by an executive (the Executive Team decides)."""
    from workflow_app.models.org import Person
    from workflow_app.services.decisions import raise_escalation

    def work():
        actor = db.session.scalar(db.select(Person).where(Person.email == EXEC))
        decision = raise_escalation(
            actor,
            case_of("UNSCH", "performance"),
            to_level="2a",
            reason="RTT and cancer waits have failed for four months",
            evidence_note="RTT 18 weeks 71% against 92%; cancer 62-day 58% against 75%",
        )
        db.session.commit()
        return decision.id

    return journey.db(work)


def test_escalation_to_level_2a_from_a_recorded_concern_to_letter_deadlines_and_emails(iqpf):
    j = iqpf
    # The performance team records the concern and runs October's review.
    j.sign_in(ANALYST)
    j.nav("Units")
    with j.page.expect_navigation():
        j.page.get_by_role("link", name=UNIT).first.click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="Record a concern").click()
    j.page.get_by_label("Domain").select_option(label="Quality, safety & patient experience")
    j.page.get_by_label("What kind of concern is it?").select_option("quality_standard_failed")
    j.page.get_by_label("How severe is it?").select_option("high")
    j.page.get_by_label("Summary").fill("Sepsis screening standard failed at the ED audit")
    j.page.get_by_label("Evidence", exact=True).fill("Clinical audit report CA-2026-117")
    j.page.get_by_label("When did it happen?").fill("2026-10-14")
    with j.page.expect_navigation():
        j.page.get_by_role("button", name="Record concern").click()
    assert "Concern recorded" in j.banner()
    j.nav("Proposals")
    j.page.get_by_label("Month to review").fill("2026-10")
    with j.page.expect_navigation():
        j.page.get_by_role("button", name="Run the review").click()
    assert "1 new proposals" in j.banner()

    # An executive opens it from Decisions, reads the evidence and previews the letter.
    j.sign_in(OTHER_EXEC)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert "as Executive Director" in row.inner_text()
    j.open_decision(UNIT)
    assert j.heading() == "Level 1: Normal arrangements → Level 2a"
    main = j.main_text()
    assert "Sepsis screening standard failed at the ED audit" in main  # why, with the evidence
    assert "Evidence" in main and "the monthly review (key_deliverables_failing)" in main
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="Preview the letter").click()
    preview = j.page.content()
    assert "PREVIEW – not issued" in preview and "Sepsis screening standard failed" in preview
    j.page.go_back()

    # Signing without naming the meeting is refused with the reason; then it is signed.
    status = j.sign("Approve: move to Level 2a", "Agreed: recovery plan needed", meeting="")
    assert status == 400 and "Name the meeting where this was agreed" in j.problem()
    assert j.db(lambda: case_of("UNSCH", "performance").level) == "1"
    j.sign("Approve: move to Level 2a", "Agreed: recovery plan needed", meeting=MEETING)
    assert j.banner() == (
        "Approved: Unscheduled Care's Performance track is now at Level 2a. "
        "The letter and deadlines have been created."
    )
    assert (
        "Signed by Ed Other as Executive Director on" in j.main_text()
        and f"Approved on behalf of the Executive Team at {MEETING}" in j.main_text()
    )

    # The case: new level, the deadline, the letter with reasons and signature block.
    j.open_case_from_decision()
    assert "Current level: Level 2a since" in j.current_level_text()
    deadlines = j.section("Deadlines")
    assert "Recovery plan due" in deadlines
    assert "Monthly update to the Executive Committee" in deadlines
    assert "Escalation 2a" in j.section("Letters")
    letter = normalise(j.open_letter("Escalation 2a"))
    assert "Escalation to Level 2a: Unscheduled Care" in letter
    assert "Sepsis screening standard failed at the ED audit" in letter  # the reasons
    assert "Please provide your response by" in letter  # the recovery plan's due date
    assert "Ed Other" in letter and "Executive Director" in letter  # the signature block
    assert f"Approved on behalf of the Executive Team at {MEETING}" in letter

    # The notifications: the lead and the accountable executive, held for the letter's PDF.
    subject = "Unscheduled Care: Performance now at Level 2a"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert sorted((m["to"], m["status"]) for m in mails) == [(EXEC, "held"), (LEAD, "held")]
    assert j.db(decision_emails) == [(EXEC, subject, "held"), (LEAD, subject, "held")]


def test_de_escalation_from_2a_to_1_raised_by_hand_and_signed_by_the_ceo(iqpf):
    from workflow_app.models.org import Person
    from workflow_app.services.decisions import decide_proposal

    j = iqpf
    up = performance_proposal(j)

    def approve_escalation():
        from workflow_app.models.cases import Decision

        ceo = db.session.scalar(db.select(Person).where(Person.email == CEO))
        decide_proposal(
            ceo,
            db.session.get(Decision, up),
            outcome="approve",
            reason="Agreed",
            password=PASSWORD,
            meeting_reference="Executive Team, 1 July 2026",
        )
        db.session.commit()

    j.db(approve_escalation)

    # The accountable executive raises the de-escalation from the case page.
    j.sign_in(EXEC)
    j.nav("Units")
    with j.page.expect_navigation():
        j.page.get_by_role("link", name=UNIT).first.click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="Performance").click()
    assert "Current level: Level 2a since" in j.current_level_text()
    assert "Monthly update to the Executive Committee" in j.section("Deadlines")
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="raise a change by hand").click()
    options = j.page.get_by_label("Propose a move to").locator("option").all_inner_texts()
    assert sorted(options) == [
        "Choose a level",
        "De-escalate to Level 1: Normal arrangements",
        "Escalate to Level 3",
    ]
    j.page.get_by_label("Propose a move to").select_option("1")
    j.page.get_by_label("Why this should change").fill(
        "Recovery plan delivered; RTT and cancer waits back on trajectory since July"
    )
    j.page.get_by_label("The evidence").fill("RTT 18 weeks 93% (Aug, Sep, Oct); cancer 62-day 77%")
    with j.page.expect_navigation():
        j.page.get_by_role("button", name="Raise the proposal").click()
    assert j.banner().startswith("Proposal raised.")
    assert j.heading() == "Level 2a → Level 1: Normal arrangements"

    # The CEO signs it from Decisions, seeing the evidence the executive described.
    j.sign_in(CEO)
    j.open_decisions()
    j.open_decision(UNIT)
    main = j.main_text()
    assert "Proposed by Eve Exec" in normalise(main)
    assert "RTT 18 weeks 93% (Aug, Sep, Oct); cancer 62-day 77%" in main
    assert "De escalation" in main  # the letter it will create, previewable
    j.sign(
        "Approve: move to Level 1: Normal arrangements",
        "Sustained improvement",
        meeting=MEETING,
    )
    assert j.banner() == (
        "Approved: Unscheduled Care's Performance track is now at Level 1: Normal "
        "arrangements. The letter has been created."
    )

    j.open_case_from_decision()
    assert "Current level: Level 1: Normal arrangements since" in j.current_level_text()
    history = j.section("Level history")
    assert "Level 1: Normal arrangements → Level 2a" in history
    assert "Level 2a → Level 1: Normal arrangements" in history
    assert "Escalation 2a" in j.section("Letters") and "De escalation" in j.section("Letters")
    # Level 1 has no cadence: the monthly Executive Committee updates of 2a are cancelled.
    assert "Monthly update to the Executive Committee" not in j.section("Deadlines")
    letter = normalise(j.open_letter("De escalation"))
    assert "De-escalation to Level 1: Normal arrangements: Unscheduled Care" in letter
    assert "Reasons for de-escalation" in letter
    assert "Recovery plan delivered; RTT and cancer waits back on trajectory" in letter
    assert "Carys Chief" in letter and "Chief Executive" in letter
    assert f"Approved on behalf of the Executive Team at {MEETING}" in letter

    subject = "Unscheduled Care: Performance now at Level 1: Normal arrangements"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert sorted(m["to"] for m in mails) == [EXEC, LEAD]
    assert j.db(lambda: case_of("UNSCH", "performance").level) == "1"


def test_the_ceo_rejects_a_proposal_with_a_reason_and_the_case_stays(iqpf):
    j = iqpf
    overspend_proposal(j)
    before = j.snapshot("UNSCH")

    j.sign_in(CEO)
    j.open_decisions()
    j.open_decision(UNIT)
    assert j.heading() == "Level 1: Normal arrangements → Level 2b (Financial)"
    assert "£742,310" in j.main_text()  # the evidence: the year-to-date overspend
    j.sign("Reject", "One-off pay award, funded in November; recovery agreed")
    assert j.banner() == (
        "Rejected: Unscheduled Care's Finance track stays at Level 1: Normal arrangements."
    )
    main = normalise(j.main_text())
    assert "Status Rejected" in main
    assert "Rejected: One-off pay award, funded in November; recovery agreed" in main
    assert "Signed by Carys Chief as Chief Executive on" in main

    j.open_case_from_decision()
    assert "Current level: Level 1: Normal arrangements since" in j.current_level_text()
    assert "No letters on this case yet." in j.section("Letters")
    assert "(rejected)" in j.section("Decisions")
    j.open_decisions()
    assert "Nothing is waiting for your signature." in j.decisions_table("mine").inner_text()

    j.assert_rejection_changed_nothing("UNSCH", before)


def test_a_deputy_signs_the_ceos_decision_as_delegate_of_the_ceo(iqpf):
    j = iqpf
    overspend_proposal(j)

    j.sign_in(DEPUTY)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert "as Chief Executive (delegate of Carys Chief)" in normalise(row.inner_text())
    j.open_decision(UNIT)
    assert "You sign as Chief Executive, as delegate of Carys Chief." in j.main_text()
    j.sign("Approve: move to Level 2b (Financial)", "Overspend confirmed in the CEO's absence")
    assert j.banner() == (
        "Approved: Unscheduled Care's Finance track is now at Level 2b (Financial). "
        "The letter and deadlines have been created."
    )
    assert "Signed by Dee Deputy as Chief Executive as delegate of Carys Chief" in j.main_text()

    j.open_case_from_decision()
    assert "Current level: Level 2b (Financial) since" in j.current_level_text()
    assert "Signed by Dee Deputy as Chief Executive (delegate of Carys Chief)" in j.section(
        "Decisions"
    )
    assert "Action plan due" in j.section("Deadlines")
    letter = normalise(j.open_letter("Escalation 2b"))
    assert "742,310" in letter  # the evidence as it stood
    assert "Signed by Dee Deputy as delegate of Carys Chief" in letter

    subject = "Unscheduled Care: Finance now at Level 2b (Financial)"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert sorted(m["to"] for m in mails) == [EXEC, LEAD]

    def signature():
        from workflow_app.models.cases import DecisionSignature

        (s,) = db.session.scalars(db.select(DecisionSignature)).all()
        return s.person.email, s.role, s.on_behalf_of.email

    assert j.db(signature) == (DEPUTY, "ceo", CEO)


REFUSAL = (
    "This decision needs Chief Executive to sign it. Your roles do not allow you to sign it, "
    "so nothing was signed."
)


def test_the_wrong_executive_and_the_directorate_lead_are_refused_and_nothing_changes(iqpf):
    j = iqpf
    decision_id = overspend_proposal(j)  # Finance 1 -> 2b: the Chief Executive's decision
    before = j.snapshot("UNSCH")
    forged = {
        "outcome": "approve",
        "reason": "I approve",
        "meeting_reference": "",
        "password": PASSWORD,
    }

    # An executive director sees it only under "Awaiting others", with who must sign it.
    j.sign_in(EXEC)
    j.open_decisions()
    assert "Nothing is waiting for your signature." in j.decisions_table("mine").inner_text()
    others = j.decisions_table("others").locator("tbody tr", has_text=UNIT)
    assert "Chief Executive" in others.inner_text()
    j.open_decision(UNIT, "others")
    assert REFUSAL in j.main_text()
    assert j.page.get_by_role("button", name="Sign the decision").count() == 0
    response = j.post_sign_form_by_hand(decision_id, forged)
    assert response.status == 403
    assert j.heading() == "You do not have permission to see this page"
    assert REFUSAL in j.main_text()
    assert j.snapshot("UNSCH") == before

    # The directorate lead (who may see the unit) opening the proposal gets the same answer.
    j.sign_in(LEAD)
    menu = j.page.get_by_role("navigation", name="Menu").inner_text()
    assert "Decisions" not in menu
    j.page.goto(f"{j.base_url}/decisions/{decision_id}")
    assert REFUSAL in j.main_text()
    assert j.page.get_by_role("button", name="Sign the decision").count() == 0
    response = j.post_sign_form_by_hand(decision_id, forged)
    assert response.status == 403 and REFUSAL in j.main_text()
    assert j.snapshot("UNSCH") == before


def test_approving_at_a_level_the_framework_does_not_allow_is_refused(iqpf):
    j = iqpf
    decision_id = performance_proposal(j)  # Performance 1 -> 2a
    before = j.snapshot("UNSCH")

    j.sign_in(OTHER_EXEC)
    j.open_decisions()
    j.open_decision(UNIT)
    other = j.page.get_by_label("Approve at this level instead")
    assert other.locator("option").all_inner_texts() == ["Choose a level", "Level 3"]

    # A tampered form offers Level 2b (another track's level): refused, nothing signed.
    other.evaluate("(select) => select.add(new Option('Level 2b (Financial)', '2b'))")
    status = j.sign(
        "Approve at a different level", "Straight to 2b", meeting=MEETING, other_level="2b"
    )
    assert status == 400
    assert "The framework does not allow a move to that level from here" in j.problem()
    assert j.snapshot("UNSCH") == before

    # A forged request skipping to level 1 -> 1 is refused the same way.
    response = j.post_sign_form_by_hand(
        decision_id,
        {
            "outcome": "approve_other",
            "to_level": "1",
            "reason": "x",
            "meeting_reference": MEETING,
            "password": PASSWORD,
        },
    )
    assert response.status == 400
    assert "The framework does not allow a move to that level from here" in j.problem()
    assert j.snapshot("UNSCH") == before

    # The level the framework does allow (straight to 3) is accepted, with the amendment noted.
    j.sign(
        "Approve at a different level",
        "Serious governance concerns as well",
        meeting=MEETING,
        other_level="3",
    )
    assert j.banner() == (
        "Approved: Unscheduled Care's Performance track is now at Level 3. "
        "The letter and deadlines have been created."
    )
    assert "Amended from Level 2a to Level 3: Serious governance concerns as well" in (
        j.main_text()
    )
    assert j.db(lambda: case_of("UNSCH", "performance").level) == "3"
