"""The meeting's data pack: what it holds, frozen on first generation, page and PDF."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import sqlalchemy as sa

from tests.conftest import sign_in
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual
from workflow_app.models.plans import PlanAction, RecoveryPlan
from workflow_app.services.meetings import data_pack, request_meeting


def add_measures(unit, create_domain):
    domain = create_domain()
    rtt = Measure(
        unit_id=unit.id,
        domain_id=domain.id,
        code="RTT18",
        name="RTT within 18 weeks",
        target=92,
        direction="higher_is_better",
        unit_of_measure="percent",
        kind="national_target",
    )
    ok = Measure(
        unit_id=unit.id,
        domain_id=domain.id,
        code="DNA",
        name="Did not attend rate",
        target=8,
        direction="lower_is_better",
        unit_of_measure="percent",
    )
    db.session.add_all([rtt, ok])
    db.session.flush()
    for month, value in ((8, 85.0), (9, 84.0), (10, 83.5)):
        db.session.add(MonthlyActual(measure_id=rtt.id, period=date(2026, month, 1), value=value))
        db.session.add(MonthlyActual(measure_id=ok.id, period=date(2026, month, 1), value=5))
    db.session.commit()


def test_the_pack_holds_finance_trend_exceptions_and_open_plans(
    board, budget_review, create_domain
):
    add_measures(board.unit, create_domain)
    for month, ytd in ((8, 310_000), (9, 520_500)):
        db.session.add(
            FinancePosition(
                unit_id=board.unit.id,
                period=date(2026, month, 1),
                ytd_variance=ytd,
                forecast_variance=900_000,
                budget=12_000_000,
            )
        )
    plan = RecoveryPlan(
        case_id=budget_review.case_id,
        unit_id=board.unit.id,
        kind="recovery_plan",
        title="Theatres recovery plan",
        status="in_delivery",
    )
    plan.actions = [
        PlanAction(description="Validate the waiting list", owner_id=board.lead.id, position=1)
    ]
    db.session.add(plan)
    db.session.commit()

    html = data_pack(budget_review)
    db.session.commit()
    assert html.startswith("<!DOCTYPE html>")
    assert "Data pack: Budget Review Meeting, Surgery" in html
    assert "£742,310" in html and "£968,400" in html  # October, the latest
    assert "£520,500" in html  # the trend
    assert "<svg" in html and "forecast variance" in html
    assert "RTT within 18 weeks (RTT18)" in html  # red: in exception
    assert "Did not attend rate" not in html  # green: not in exception
    assert "Theatres recovery plan" in html and "Validate the waiting list" in html
    assert "Budget Review Meeting to be held" in html  # open obligations
    assert "Level 2b (Financial)" in html
    assert budget_review.data_pack_sha256 == hashlib.sha256(html.encode()).hexdigest()
    assert "meeting.data_pack" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_the_pack_is_frozen_when_first_made(board, budget_review):
    first = data_pack(budget_review, now=datetime(2026, 12, 14, 9, tzinfo=UTC))
    db.session.commit()
    digest = budget_review.data_pack_sha256
    generated = budget_review.data_pack_generated_at
    # new data arrives: a corrected October and a November return
    db.session.add_all(
        [
            FinancePosition(
                unit_id=board.unit.id,
                period=date(2026, 10, 1),
                revision=2,
                ytd_variance=801_000,
                forecast_variance=1_250_000,
            ),
            FinancePosition(
                unit_id=board.unit.id,
                period=date(2026, 11, 1),
                ytd_variance=999_999,
                forecast_variance=1_300_000,
            ),
        ]
    )
    db.session.commit()
    again = data_pack(budget_review)
    db.session.commit()
    assert again == first
    assert budget_review.data_pack_sha256 == digest
    assert budget_review.data_pack_generated_at == generated
    assert "999,999" not in again

    # another meeting of the same kind gets the same template, with the data as it is now
    other = request_meeting(kind="budget_review", unit=board.unit, notify=False)
    fresh = data_pack(other)
    assert "£999,999" in fresh and "£801,000" in fresh
    headings = [h for h in ("Escalation position", "Finance position", "Measures in exception",
                            "Open plans and actions", "Open obligations")]  # fmt: skip
    assert all(h in first and h in fresh for h in headings)


def test_pack_page_and_pdf_serve_the_frozen_copy(app, board, budget_review):
    client = app.test_client()
    assert sign_in(client, board.execs[0].email).status_code == 302
    page = client.get(f"/meetings/{budget_review.id}/pack")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    digest = page.headers["X-Data-Pack-SHA256"]
    assert digest == hashlib.sha256(page.data).hexdigest()
    db.session.add(
        FinancePosition(
            unit_id=board.unit.id,
            period=date(2026, 11, 1),
            ytd_variance=999_999,
            forecast_variance=1_300_000,
        )
    )
    db.session.commit()
    assert client.get(f"/meetings/{budget_review.id}/pack").data == page.data
    pdf = client.get(f"/meetings/{budget_review.id}/pack.pdf")
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF")
    assert pdf.headers["X-Data-Pack-SHA256"] == digest
    # the meeting page says it is frozen
    assert "is frozen" in client.get(f"/meetings/{budget_review.id}").text


def test_a_second_request_making_the_first_pack_at_once_gets_the_frozen_pack(
    app, board, budget_review
):
    """Two requests make the first pack at once: the one that loses the race (it read the
    meeting before the other froze its pack) returns the frozen pack, not a 409."""
    from workflow_app.services.unit_of_work import transaction

    assert budget_review.data_pack_html is None  # this request has read the meeting
    version = budget_review.lock_version
    winner = "<html><body>The pack the other request froze</body></html>"
    digest = hashlib.sha256(winner.encode("utf-8")).hexdigest()
    other_request = sa.orm.Session(db.engine)  # its own connection and transaction
    with other_request.begin():
        other_request.execute(
            sa.text(
                "UPDATE meetings SET data_pack_html = :html, data_pack_sha256 = :sha, "
                "data_pack_generated_at = :at WHERE id = :id"
            ),
            {
                "html": winner,
                "sha": digest,
                "at": datetime(2026, 12, 14, 9, tzinfo=UTC),
                "id": budget_review.id,
            },
        )
    other_request.close()
    audited = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "meeting.data_pack")
    )

    with transaction():  # no Conflict
        html = data_pack(budget_review, now=datetime(2026, 12, 14, 9, 0, 1, tzinfo=UTC))
    assert html == winner
    assert budget_review.data_pack_sha256 == digest
    assert budget_review.lock_version == version
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "meeting.data_pack")
        )
        == audited  # only the winner records the pack
    )
    assert data_pack(budget_review) == winner


def test_making_the_pack_leaves_the_meetings_version_alone(board, budget_review):
    version = budget_review.lock_version
    data_pack(budget_review)
    db.session.commit()
    db.session.expire_all()
    assert budget_review.data_pack_sha256 is not None
    assert budget_review.lock_version == version
