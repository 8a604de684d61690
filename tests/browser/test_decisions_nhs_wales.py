"""Browser: Framework B (NHS Wales) decisions end to end through the real pages.

A serious concern proposes enhanced monitoring on the quality pillar: the Director General
decides, naming the meeting, and the letter, deadlines and e-mail follow. Then: the two-signature
ministerial decision (the Minister cannot sign before the Director General), a de-escalation
one level down (a two-level drop is refused), a rejection, and a delegate's signature.

Last, a formal notification: the Director General issues a letter of concern at level 1 from
the case page, without a level change; the letter is on the case and the e-mail in the outbox
(the refusals are in tests/web/test_formal_notification_page.py).
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
UNIT = "Powys Health Board"
MEETING = "WG-NHS P&I Oversight Meeting, 19 November 2026"

DG = "dg@example.gov.wales"
MINISTER = "min@example.gov.wales"
DEPUTY = "dewi@example.gov.wales"
CHIEF = "chief@example.nhs.wales"  # the organisation's lead
ANALYST = "pat@example.gov.wales"
ADMIN = "admin@example.gov.wales"
DG_TITLE = "NHS Wales Chief Executive / Director General (HSCEYG)"


@pytest.fixture
def wales(journey):
    """Welsh Government deciders, an analyst, an administrator and one health board."""

    def setup():
        dg = add_person("Dai General", DG, "director_general")
        add_person("Min Ister", MINISTER, "minister")
        deputy = add_person("Dewi Deputy", DEPUTY, "executive_director")
        chief = add_person("Org Chief", CHIEF, "directorate_lead")
        add_person("Pat Analyst", ANALYST, "performance_team")
        add_person("Ada Admin", ADMIN, "system_admin")
        add_domain("quality", "Quality")
        add_unit("PTHB", UNIT, "nhs_wales", "organisation", lead_id=chief.id)
        delegate(dg, deputy, "director_general")
        db.session.commit()

    journey.db(setup)
    return journey


def serious_concern_proposal(journey) -> int:
    """An HIW finding of serious severity; the review proposes escalation of the quality
    pillar."""
    from workflow_app.models.cases import Concern
    from workflow_app.models.org import Domain, Unit
    from workflow_app.services.review import run_review

    def work():
        unit = db.session.scalar(db.select(Unit).where(Unit.code == "PTHB"))
        domain = db.session.scalar(db.select(Domain).where(Domain.code == "quality"))
        db.session.add(
            Concern(
                unit_id=unit.id,
                domain_id=domain.id,
                kind="inspection",
                severity="serious",
                summary="HIW: immediate assurance required on mental health wards",
                occurred_on=date(2026, 10, 8),
            )
        )
        db.session.flush()
        run_review(OCT)
        db.session.commit()
        return pending_decision_id("PTHB", "quality")

    return journey.db(work)


def at_enhanced_monitoring(journey) -> None:
    """The quality pillar already moved to Level 3 by the Director General's decision."""
    from workflow_app.models.cases import Decision
    from workflow_app.models.org import Person
    from workflow_app.services.decisions import decide_proposal

    decision_id = serious_concern_proposal(journey)

    def work():
        decision = db.session.get(Decision, decision_id)
        assert decision.to_level == "3"
        decide_proposal(
            db.session.scalar(db.select(Person).where(Person.email == DG)),
            decision,
            outcome="approve",
            reason="Agreed with officials",
            password=PASSWORD,
            meeting_reference="WG-NHS P&I Oversight Meeting, 15 October 2026",
        )
        db.session.commit()

    journey.db(work)


def open_raise_form(journey) -> None:
    """The analyst opens "raise a change by hand" from the quality pillar's case page."""
    j = journey
    j.sign_in(ANALYST)
    j.nav("Units")
    with j.page.expect_navigation():
        j.page.get_by_role("link", name=UNIT).first.click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="Quality", exact=True).click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="raise a change by hand").click()


def submit_raise_form(journey, option: str, reason: str, evidence: str) -> int:
    """Fill in and send the raise form (``option`` is the visible label); the HTTP status."""
    page = journey.page
    page.get_by_label("Propose a move to").select_option(label=option)
    page.get_by_label("Why this should change").fill(reason)
    page.get_by_label("The evidence").fill(evidence)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Raise the proposal").click()
    return navigation.value.status


def raise_by_hand(journey, option: str, reason: str, evidence: str) -> None:
    open_raise_form(journey)
    submit_raise_form(journey, option, reason, evidence)
    assert journey.banner().startswith("Proposal raised."), journey.main_text()


def test_a_serious_concern_to_enhanced_monitoring_with_letter_deadlines_and_email(wales):
    j = wales
    serious_concern_proposal(j)

    j.sign_in(DG)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert f"as {DG_TITLE}" in row.inner_text()
    j.open_decision(UNIT)
    assert j.heading() == "Routine arrangements → Enhanced monitoring"
    main = j.main_text()
    assert "HIW: immediate assurance required on mental health wards" in main
    assert "Evidence" in main and "the monthly review (serious_concern)" in main
    j.sign(
        "Approve: move to Enhanced monitoring",
        "Agreed with officials: enhanced monitoring of quality",
        meeting=MEETING,
    )
    assert j.banner() == (
        "Approved: Powys Health Board's Quality track is now at Enhanced monitoring. "
        "The letter and deadlines have been created."
    )
    assert f"Signed by Dai General as {DG_TITLE} on" in j.main_text()

    j.open_case_from_decision()
    assert "Current level: Enhanced monitoring since" in j.current_level_text()
    deadlines = j.section("Deadlines")
    assert "Progress update due" in deadlines  # the level's consequence
    assert "CEO / Executive review" in deadlines  # its cadence (every 3 months)
    letter = normalise(j.open_letter("Escalation enhanced monitoring"))
    assert "Enhanced monitoring" in letter and UNIT in letter
    assert "HIW: immediate assurance required on mental health wards" in letter
    assert "Dai General" in letter and DG_TITLE in letter
    assert MEETING in letter

    subject = "Powys Health Board: Quality now at Enhanced monitoring"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert [(m["to"], m["status"]) for m in mails] == [(CHIEF, "held")]
    assert j.db(decision_emails) == [(CHIEF, subject, "held")]


def test_targeted_intervention_needs_the_director_general_then_the_minister(wales):
    j = wales
    at_enhanced_monitoring(j)
    raise_by_hand(
        j,
        "Escalate to Targeted intervention",
        "Sustained non-delivery on quality despite enhanced monitoring",
        "Progress updates late twice; HIW follow-up found the same failings",
    )
    decision_id = j.db(lambda: pending_decision_id("PTHB", "quality"))
    before = j.snapshot("PTHB")

    # The Minister cannot sign first: the sequence is the Director General, then the Minister.
    j.sign_in(MINISTER)
    j.open_decisions()
    assert "Nothing is waiting for your signature." in j.decisions_table("mine").inner_text()
    j.open_decision(UNIT, "others")
    refusal = (
        f"This decision needs {DG_TITLE} to sign it first (signature 1 of 2). You can sign it "
        "as Minister (ministerial decision) after that; nothing was signed."
    )
    assert refusal in j.main_text()
    forged = {"outcome": "approve", "reason": "Decided", "password": PASSWORD}
    response = j.post_sign_form_by_hand(decision_id, forged)
    assert response.status == 403 and refusal in j.main_text()
    assert j.snapshot("PTHB") == before

    # The Director General recommends: signature 1 of 2, the level does not move yet.
    j.sign_in(DG)
    j.open_decisions()
    j.open_decision(UNIT)
    assert "This is signature 1 of 2" in j.main_text()
    j.sign("Approve: move to Targeted intervention", "Recommend targeted intervention")
    assert j.banner() == (
        "Signed. The decision now awaits signature 2 of 2 from Minister (ministerial "
        "decision); it takes effect when that is signed."
    )
    assert j.db(lambda: case_of("PTHB", "quality").level) == "3"

    # The Minister decides.
    j.sign_in(MINISTER)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert "awaiting signature 2 of 2" in row.inner_text()
    j.open_decision(UNIT)
    j.sign("Approve: move to Targeted intervention", "Ministerial decision: agreed")
    assert j.banner() == (
        "Approved: Powys Health Board's Quality track is now at Targeted intervention. "
        "The letter and deadlines have been created."
    )
    j.open_case_from_decision()
    assert "Current level: Targeted intervention since" in j.current_level_text()
    assert "Improvement plan due" in j.section("Deadlines")
    letter = normalise(j.open_letter("Escalation targeted intervention"))
    assert "Dai General" in letter and "Min Ister" in letter  # both signature blocks
    assert "Sustained non-delivery on quality despite enhanced monitoring" in letter
    subject = "Powys Health Board: Quality now at Targeted intervention"
    assert (CHIEF, subject, "held") in j.db(decision_emails)


def test_de_escalation_one_level_down_and_a_two_level_drop_is_refused(wales):
    j = wales
    at_enhanced_monitoring(j)
    before = j.snapshot("PTHB")

    # A tampered raise form proposing a drop straight to level 1 is refused; nothing proposed.
    open_raise_form(j)
    j.page.get_by_label("Propose a move to").evaluate(
        "(select) => select.add(new Option('De-escalate to Routine arrangements', '1'))"
    )
    status = submit_raise_form(
        j, "De-escalate to Routine arrangements", "Straight to 1", "HIW closure letter"
    )
    assert status == 400
    assert (
        "The framework does not allow a move from Enhanced monitoring to Routine arrangements"
        in j.problem()
    )
    assert j.snapshot("PTHB") == before

    raise_by_hand(
        j,
        "De-escalate to Areas of concern",
        "Sustained improvement: HIW actions delivered, quality measures on trajectory",
        "HIW closure letter 2 November 2026; incidents back within control limits",
    )
    before = j.snapshot("PTHB")

    j.sign_in(DG)
    j.open_decisions()
    j.open_decision(UNIT)
    assert j.heading() == "Enhanced monitoring → Areas of concern"
    assert "HIW closure letter 2 November 2026" in j.main_text()
    other = j.page.get_by_label("Approve at this level instead")
    assert "Routine arrangements" not in other.inner_text()  # one level at a time

    # Tampered: approve a drop straight to Routine arrangements. Refused, nothing changed.
    other.evaluate("(select) => select.add(new Option('Routine arrangements', '1'))")
    status = j.sign(
        "Approve at a different level", "Straight to 1", meeting=MEETING, other_level="1"
    )
    assert status == 400
    assert "The framework does not allow a move to that level from here" in j.problem()
    assert j.snapshot("PTHB") == before
    assert j.db(lambda: case_of("PTHB", "quality").level) == "3"

    j.sign("Approve: move to Areas of concern", "Sustained improvement", meeting=MEETING)
    assert j.banner() == (
        "Approved: Powys Health Board's Quality track is now at Areas of concern. "
        "The letter has been created."
    )
    j.open_case_from_decision()
    assert "Current level: Areas of concern since" in j.current_level_text()
    deadlines = j.section("Deadlines")
    assert "CEO / Executive review" in deadlines  # re-planned for level 2 (every 6 months)
    letter = normalise(j.open_letter("De escalation"))
    assert "De-escalation to Areas of concern: Powys Health Board" in letter
    assert "Sustained improvement: HIW actions delivered" in letter
    assert "Dai General" in letter and MEETING in letter
    subject = "Powys Health Board: Quality now at Areas of concern"
    assert (CHIEF, subject, "held") in j.db(decision_emails)


def test_the_director_general_rejects_and_the_pillar_stays_at_routine(wales):
    j = wales
    serious_concern_proposal(j)
    before = j.snapshot("PTHB")

    j.sign_in(DG)
    j.open_decisions()
    j.open_decision(UNIT)
    j.sign("Reject", "Health board's own action plan accepted; review next month")
    assert j.banner() == (
        "Rejected: Powys Health Board's Quality track stays at Routine arrangements."
    )
    assert "Rejected: Health board's own action plan accepted" in j.main_text()
    j.open_case_from_decision()
    assert "Current level: Routine arrangements since" in j.current_level_text()
    assert "No letters on this case yet." in j.section("Letters")
    j.assert_rejection_changed_nothing("PTHB", before)


def test_a_deputy_signs_as_delegate_of_the_director_general(wales):
    j = wales
    serious_concern_proposal(j)

    j.sign_in(DEPUTY)
    j.open_decisions()
    row = j.decisions_table("mine").locator("tbody tr", has_text=UNIT)
    assert f"as {DG_TITLE} (delegate of Dai General)" in normalise(row.inner_text())
    j.open_decision(UNIT)
    assert f"You sign as {DG_TITLE}, as delegate of Dai General." in j.main_text()
    j.sign("Approve: move to Enhanced monitoring", "Agreed in the DG's absence", meeting=MEETING)
    assert "is now at Enhanced monitoring" in j.banner()
    assert f"Signed by Dewi Deputy as {DG_TITLE} as delegate of Dai General" in j.main_text()
    j.open_case_from_decision()
    assert "(delegate of Dai General)" in j.section("Decisions")
    letter = normalise(j.open_letter("Escalation enhanced monitoring"))
    assert "Signed by Dewi Deputy as delegate of Dai General" in letter
    subject = "Powys Health Board: Quality now at Enhanced monitoring"
    assert [m["to"] for m in j.outbox(ADMIN) if m["subject"] == subject] == [CHIEF]


def test_the_director_general_issues_a_letter_of_concern_without_a_level_change(wales):
    j = wales
    before = j.snapshot("PTHB")

    j.sign_in(DG)
    j.nav("Units")
    with j.page.expect_navigation():
        j.page.get_by_role("link", name=UNIT).first.click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="Quality", exact=True).click()
    with j.page.expect_navigation():
        j.page.get_by_role("link", name="issue a letter of concern or performance notice").click()
    assert j.heading() == "Issue a formal notification"
    assert f"You issue it as {DG_TITLE}." in j.main_text()
    page = j.page
    page.get_by_label("Letter of concern", exact=True).check()
    page.get_by_label("Reason for the notification").fill(
        "Falls with harm on the mental health wards have risen for three months"
    )
    page.get_by_label("The evidence").fill("Datix falls report, September 2026")
    page.get_by_label("Your password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Issue the notification").click()
    assert j.banner() == (
        "Letter of concern issued to Powys Health Board. The letter is on the case; the "
        "level stays at Routine arrangements."
    )

    # Back on the case: the level is unchanged and the letter is listed.
    assert "Current level: Routine arrangements since" in j.current_level_text()
    assert "Letter of concern (" in j.section("Letters")
    assert "Formal notification at Routine arrangements, level unchanged" in j.section("Decisions")
    after = j.snapshot("PTHB")
    assert after["levels"] == before["levels"]
    assert after["level_changes"] == before["level_changes"]
    assert after["letters"] == before["letters"] + 1
    letter = normalise(j.open_letter("Letter of concern"))
    assert UNIT in letter and "Dai General" in letter
    assert "Falls with harm on the mental health wards" in letter

    subject = "Powys Health Board: Letter of concern on Quality (level unchanged)"
    mails = [m for m in j.outbox(ADMIN) if m["subject"] == subject]
    assert [(m["to"], m["status"]) for m in mails] == [(CHIEF, "held")]
    assert j.db(decision_emails) == [(CHIEF, subject, "held")]
