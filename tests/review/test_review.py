"""The review end to end: data in the database -> proposals with evidence, never a level change."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from tests.conftest import csrf_from
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase
from workflow_app.models.measures import FinancePosition, MonthlyActual
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.review import rereview_after_revision, run_review

OCT = date(2026, 10, 1)


def finance(unit, ytd, forecast, period=OCT, revision=1):
    db.session.add(
        FinancePosition(
            unit_id=unit.id,
            period=period,
            ytd_variance=ytd,
            forecast_variance=forecast,
            revision=revision,
        )
    )
    db.session.commit()


def case_of(unit, track):
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def proposals(status="pending"):
    return db.session.scalars(
        sa.select(Decision).where(Decision.status == status).order_by(Decision.id)
    ).all()


def test_an_overspend_becomes_a_2b_proposal_with_evidence_and_no_level_change(app, create_unit):
    unit = create_unit(name="Unscheduled Care")
    finance(unit, 742_310, 968_400)
    outcome = run_review(OCT)
    db.session.commit()
    (proposal,) = outcome.created
    assert (proposal.case.track, proposal.from_level, proposal.to_level) == ("finance", "1", "2b")
    assert proposal.status == "pending" and proposal.origin == "engine"
    assert proposal.signature_rule == "ceo"
    assert "£742,310" in proposal.reason and "£500,000" in proposal.reason
    assert json.loads(proposal.evidence)
    assert case_of(unit, "finance").level == "1"  # the engine proposes; people decide


def test_exactly_the_threshold_is_not_more_than_it(app, create_unit):
    unit = create_unit()
    finance(unit, 500_000, 1_000_000)
    assert run_review(OCT).created == []


def test_rerunning_the_review_creates_nothing_twice(app, create_unit):
    unit = create_unit()
    finance(unit, 742_310, 968_400)
    run_review(OCT)
    db.session.commit()
    again = run_review(OCT)
    db.session.commit()
    assert again.created == [] and again.unchanged == 1
    assert len(proposals()) == 1


def test_revised_data_supersedes_a_pending_proposal_with_a_linked_one(app, create_unit):
    unit = create_unit()
    finance(unit, 742_310, 968_400)
    run_review(OCT)
    db.session.commit()
    finance(unit, 801_000, 968_400, revision=2)  # the finance team corrects October
    outcomes = rereview_after_revision({(unit.id, OCT)})
    db.session.commit()
    (new,) = outcomes[0].created
    (old,) = proposals("superseded")
    assert new.supersedes_id == old.id
    assert "£801,000" in new.reason
    assert len(proposals()) == 1


def test_revised_data_that_removes_the_trigger_withdraws_the_proposal(app, create_unit):
    unit = create_unit()
    finance(unit, 742_310, 968_400)
    run_review(OCT)
    db.session.commit()
    finance(unit, 120_000, 300_000, revision=2)
    rereview_after_revision({(unit.id, OCT)})
    db.session.commit()
    assert proposals() == []
    assert len(proposals("superseded")) == 1


def test_a_decided_proposal_is_flagged_to_its_decider_when_evidence_changes(
    app, create_unit, create_person
):
    ceo = create_person("ceo", email="ceo@example.nhs.uk")
    unit = create_unit()
    finance(unit, 742_310, 968_400)
    (proposal,) = run_review(OCT).created
    proposal.status = "approved"  # as the decisions issue will do
    proposal.decided_at = proposal.proposed_at
    db.session.add(
        DecisionSignature(decision_id=proposal.id, person_id=ceo.id, role="ceo", meaning="approved")
    )
    db.session.commit()
    finance(unit, 801_000, 968_400, revision=2)
    outcome = rereview_after_revision({(unit.id, OCT)})[0]
    db.session.commit()
    assert outcome.flagged == [proposal]
    assert proposal.evidence_revised_at is not None
    assert proposal.status == "approved"  # the decision stands
    mail = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "evidence_revised")
    )
    assert mail.to_address == ceo.email


def test_a_gap_month_is_a_data_quality_warning_not_a_failure(app, create_unit, create_domain):
    from workflow_app.models.measures import Measure

    unit = create_unit()
    measure = Measure(
        unit_id=unit.id,
        domain_id=create_domain().id,
        code="RTT18",
        name="RTT",
        target=92,
        direction="higher_is_better",
        kind="key_deliverable",
    )
    db.session.add(measure)
    db.session.commit()
    for month, value in ((7, 80), (8, 80), (10, 80)):  # September is missing
        db.session.add(
            MonthlyActual(measure_id=measure.id, period=date(2026, month, 1), value=value)
        )
    db.session.commit()
    (evaluation,) = run_review(OCT, keep_evaluations=True).evaluations
    warnings = " ".join(evaluation.warnings) + " ".join(
        w for m in evaluation.measures for w in m.data_quality_warnings
    )
    assert "Sep 2026" in warnings or "September 2026" in warnings
    (measure_eval,) = evaluation.measures
    assert measure_eval.month_count.consecutive_under == 3


def test_proposals_page_lists_and_explains_and_the_team_can_run_the_review(
    client, login, create_person, create_unit
):
    unit = create_unit(name="Women & Children")
    finance(unit, 412_650, 1_126_000)
    login(create_person("performance_team"))
    page = client.get("/proposals/")
    response = client.post(
        "/proposals/run",
        data={"csrf_token": csrf_from(page.text), "month": "2026-10"},
        follow_redirects=True,
    )
    assert "Review of October 2026 done" in response.text
    assert "1 new proposals" in response.text
    assert "Women &amp; Children" in response.text
    proposal = proposals()[0]
    detail = client.get(f"/proposals/{proposal.id}")
    assert "£1,126,000" in detail.text
    bad = client.post(
        "/proposals/run",
        data={"csrf_token": csrf_from(page.text), "month": "October"},
        follow_redirects=True,
    )
    assert "Enter the month as YYYY-MM" in bad.text


def test_a_lead_cannot_run_the_review_or_see_other_units_proposals(
    client, login, create_person, create_unit
):
    lead = create_person("directorate_lead")
    create_unit(lead=lead)
    other = create_unit(name="Other")
    finance(other, 742_310, 0)
    (proposal,) = run_review(OCT).created
    db.session.commit()
    login(lead)
    assert client.get(f"/proposals/{proposal.id}").status_code == 404
    page = client.get("/")
    assert (
        client.post(
            "/proposals/run", data={"csrf_token": csrf_from(page.text), "month": "2026-10"}
        ).status_code
        == 403
    )


def test_recording_a_concern(client, login, create_person, create_unit, create_domain):
    from workflow_app.models.cases import Concern

    domain = create_domain("quality_safety_experience", "Quality, Safety & Patient Experience")
    unit = create_unit()
    login(create_person("executive_director"))
    page = client.get(f"/units/{unit.id}/concerns/new")
    assert page.status_code == 200
    token = csrf_from(page.text)
    empty = client.post(
        f"/units/{unit.id}/concerns/new",
        data={
            "csrf_token": token,
            "domain_id": domain.id,
            "kind": "never_event",
            "severity": "high",
            "summary": "",
        },
    )
    assert "Summarise the concern" in empty.text
    future = client.post(
        f"/units/{unit.id}/concerns/new",
        data={
            "csrf_token": token,
            "domain_id": domain.id,
            "kind": "never_event",
            "severity": "high",
            "summary": "Wrong-site surgery",
            "occurred_on": "2099-01-01",
        },
    )
    assert "cannot be in the future" in future.text
    assert db.session.scalar(sa.select(sa.func.count(Concern.id))) == 0
    done = client.post(
        f"/units/{unit.id}/concerns/new",
        data={
            "csrf_token": token,
            "domain_id": domain.id,
            "kind": "never_event",
            "severity": "high",
            "summary": "Wrong-site surgery",
            "evidence": "Incident 123",
        },
        follow_redirects=True,
    )
    assert "Concern recorded" in done.text
    assert "Wrong-site surgery" in done.text


def test_a_lead_cannot_record_a_concern(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    unit = create_unit(lead=lead)
    login(lead)
    assert client.get(f"/units/{unit.id}/concerns/new").status_code == 403


def test_cli_review_run(app, create_unit):
    from workflow_app.cli.review import review_cli

    unit = create_unit(code="UNSCH")
    finance(unit, 742_310, 968_400)
    runner = app.test_cli_runner()
    first = runner.invoke(review_cli, ["run", "--month", "2026-10"])
    assert first.exit_code == 0, first.output
    assert "1 new proposals" in first.output and "UNSCH finance: 1 -> 2b" in first.output
    second = runner.invoke(review_cli, ["run", "--month", "2026-10"])
    assert "0 new proposals" in second.output and "1 unchanged" in second.output
    bad = runner.invoke(review_cli, ["run", "--month", "Oct"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
