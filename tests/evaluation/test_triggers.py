"""The bundled frameworks' triggers on small hand-made units."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from state_machines import get_framework
from workflow_app.evaluation import (
    ConcernInput,
    FinancePoint,
    PlanInput,
    UnitInput,
    evaluate_unit,
)

from .builders import measure, month

OCT = month(10)
IQPF = get_framework("iqpf")
WALES = get_framework("nhs_wales")
TIERS = get_framework("system_tiers")


def iqpf_unit(levels=None, measures=(), finance=(), concerns=(), plans=(), **kw) -> UnitInput:
    return UnitInput(
        code="SURG",
        name="Surgery directorate",
        kind="operational_directorate",
        framework="iqpf",
        levels=levels or {"performance": "1", "finance": "1"},
        measures=tuple(measures),
        finance=tuple(finance),
        concerns=tuple(concerns),
        plans=tuple(plans),
        **kw,
    )


def moves(evaluation):
    return [(p.track, p.from_level, p.to_level, p.rule_id) for p in evaluation.proposals]


# --------------------------------------------------------------------------------------------
# Framework A (iqpf)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ytd", "forecast", "expected"),
    [
        (500_000, 1_000_000, []),
        (500_000.01, 0, [("finance", "1", "2b", "finance_overspend")]),
        (0, 1_000_000.01, [("finance", "1", "2b", "finance_overspend")]),
        (-750_000, -1_500_000, []),
    ],
)
def test_iqpf_finance_thresholds(ytd, forecast, expected):
    unit = iqpf_unit(finance=[FinancePoint(OCT, ytd, forecast)])
    assert moves(evaluate_unit(unit, OCT, IQPF)) == expected


def test_iqpf_finance_evidence_wording():
    unit = iqpf_unit(finance=[FinancePoint(OCT, 742_310, 900_000)])
    (proposal,) = evaluate_unit(unit, OCT, IQPF).proposals
    assert proposal.kind == "escalate"
    assert "£742,310" in proposal.summary and "£500,000" in proposal.summary
    assert "Level 2b (Financial)" in proposal.summary
    (signal,) = proposal.evidence["signals"]
    assert signal["signal"] == "ytd_overspend"
    assert signal["value"] == 742_310 and signal["threshold"] == 500_000
    assert proposal.evidence["rule"]["id"] == "finance_overspend"


def test_iqpf_no_finance_proposal_when_already_at_2b():
    unit = iqpf_unit(
        levels={"performance": "1", "finance": "2b"},
        finance=[FinancePoint(OCT, 900_000, 2_000_000)],
    )
    assert moves(evaluate_unit(unit, OCT, IQPF)) == []


def test_iqpf_missing_finance_return_warns():
    evaluation = evaluate_unit(iqpf_unit(), OCT, IQPF)
    assert any("no finance return" in w for w in evaluation.warnings)


def _kd(code, values, **kw):
    return measure(values, code=code, name=f"Deliverable {code}", start=month(8), **kw)


def test_iqpf_more_than_one_key_deliverable_red_proposes_2a():
    unit = iqpf_unit(measures=[_kd("A", [86, 86, 80]), _kd("B", [86, 86, 70])])
    evaluation = evaluate_unit(unit, OCT, IQPF)
    assert moves(evaluation) == [("performance", "1", "2a", "key_deliverables_failing")]
    summary = evaluation.proposals[0].summary
    assert "2 key deliverables are red in Oct 2026" in summary
    assert "Deliverable A (80% against 85%)" in summary


def test_iqpf_one_key_deliverable_red_is_not_enough():
    unit = iqpf_unit(measures=[_kd("A", [86, 86, 80]), _kd("B", [86, 86, 86])])
    assert moves(evaluate_unit(unit, OCT, IQPF)) == []


def test_iqpf_amber_on_trajectory_is_not_failing():
    on_trajectory = _kd("B", [86, 86, 80], trajectory=[None, None, 80])
    unit = iqpf_unit(measures=[_kd("A", [86, 86, 80]), on_trajectory])
    evaluation = evaluate_unit(unit, OCT, IQPF)
    assert evaluation.measures[1].rag_by_period[OCT] == "amber"
    assert moves(evaluation) == []


def test_iqpf_national_target_trajectory_missed_proposes_2a():
    nt = measure([86, 86, 84], kind="national_target", start=month(8))
    assert moves(evaluate_unit(iqpf_unit(measures=[nt]), OCT, IQPF)) == [
        ("performance", "1", "2a", "key_deliverables_failing")
    ]


def test_iqpf_serious_concern_goes_straight_to_3():
    concern = ConcernInput(
        "serious_quality_governance_concern",
        "serious",
        "quality_safety_experience",
        "HIW inspection found unsafe staffing on two wards",
        date(2026, 10, 3),
    )
    evaluation = evaluate_unit(iqpf_unit(concerns=[concern]), OCT, IQPF)
    assert moves(evaluation) == [("performance", "1", "3", "serious_quality_concern")]
    assert "HIW inspection found unsafe staffing" in evaluation.proposals[0].summary


def test_iqpf_concern_after_the_period_is_ignored():
    concern = ConcernInput(
        "serious_quality_governance_concern",
        "serious",
        "quality_safety_experience",
        "x",
        date(2026, 11, 2),
    )
    assert moves(evaluate_unit(iqpf_unit(concerns=[concern]), OCT, IQPF)) == []


def test_iqpf_recovery_failing_wording():
    rtt = measure(
        [86, 84, 83, 82, 81, 79, 78],
        start=month(4),
        trajectory=[None, None, None, 82, 82, 82, 83],
    )
    unit = iqpf_unit(
        levels={"performance": "2a", "finance": "1"},
        measures=[rtt],
        plans=[PlanInput("performance", approved_on=date(2026, 7, 14))],
    )
    (proposal,) = evaluate_unit(unit, OCT, IQPF).proposals
    assert (proposal.track, proposal.to_level, proposal.rule_id) == (
        "performance",
        "3",
        "recovery_failing",
    )
    assert "approved in July" in proposal.summary
    assert "Aug 81% against a trajectory of 82%" in proposal.summary
    assert "Oct 78%" in proposal.summary


def test_iqpf_de_escalation_is_one_level_down():
    plan = PlanInput(
        "performance", approved_on=month(3), actions_delivered=True, trajectory_met_months=3
    )
    unit = iqpf_unit(levels={"performance": "3", "finance": "1"}, plans=[plan])
    evaluation = evaluate_unit(unit, OCT, IQPF)
    assert moves(evaluation) == [("performance", "3", "2a", "sustained_improvement")]
    assert evaluation.proposals[0].kind == "de_escalate"


def test_iqpf_no_de_escalation_without_delivered_actions():
    plan = PlanInput("performance", approved_on=month(3), trajectory_met_months=6)
    unit = iqpf_unit(levels={"performance": "2a", "finance": "1"}, plans=[plan])
    assert moves(evaluate_unit(unit, OCT, IQPF)) == []


def test_iqpf_no_de_escalation_while_overspend_persists():
    plan = PlanInput(
        "finance", approved_on=month(3), actions_delivered=True, trajectory_met_months=3
    )
    base = iqpf_unit(levels={"performance": "1", "finance": "2b"}, plans=[plan])
    still = replace(base, finance=(FinancePoint(OCT, 600_000, 0),))
    assert moves(evaluate_unit(still, OCT, IQPF)) == []
    recovered = replace(base, finance=(FinancePoint(OCT, 100_000, 0),))
    assert moves(evaluate_unit(recovered, OCT, IQPF)) == [
        ("finance", "2b", "1", "sustained_improvement")
    ]


def test_iqpf_unit_kind_outside_framework_gets_no_proposals():
    unit = replace(iqpf_unit(finance=[FinancePoint(OCT, 900_000, 0)]), kind="organisation")
    evaluation = evaluate_unit(unit, OCT, IQPF)
    assert evaluation.proposals == ()
    assert any("does not apply" in w for w in evaluation.warnings)


# --------------------------------------------------------------------------------------------
# Framework B (nhs_wales)
# --------------------------------------------------------------------------------------------


def wales_unit(levels=None, measures=(), concerns=(), plans=(), level_since=None) -> UnitInput:
    return UnitInput(
        code="HB1",
        name="Example University Health Board",
        kind="organisation",
        framework="nhs_wales",
        levels=levels or {},
        measures=tuple(measures),
        concerns=tuple(concerns),
        plans=tuple(plans),
        level_since=level_since or {},
    )


def test_wales_two_months_under_on_a_delivery_measure_raises_delivery_pillar_to_2():
    m = measure([90, 86, 84, 84], start=month(7))
    evaluation = evaluate_unit(wales_unit(measures=[m]), OCT, WALES)
    assert moves(evaluation) == [("delivery", "1", "2", "pillar_concern")]
    assert "(Sep 84%, Oct 84%)" in evaluation.proposals[0].summary


def test_wales_one_month_under_is_not_enough():
    m = measure([84, 90, 86, 84], start=month(7))
    assert moves(evaluate_unit(wales_unit(measures=[m]), OCT, WALES)) == []


def test_wales_concern_severity_maps_to_its_pillar():
    moderate = ConcernInput(
        "complaint_trend",
        "moderate",
        "quality_safety_experience",
        "Complaints up 40%",
        date(2026, 9, 1),
    )
    high = ConcernInput(
        "inspection", "high", "workforce_culture", "Staffing review", date(2026, 9, 1)
    )
    low = ConcernInput("speaking_up", "low", "leadership", "One report", date(2026, 9, 1))
    evaluation = evaluate_unit(wales_unit(concerns=[moderate, high, low]), OCT, WALES)
    assert moves(evaluation) == [
        ("quality", "1", "2", "pillar_concern"),
        ("workforce", "1", "3", "serious_concern"),
    ]


def test_wales_never_proposes_down_from_an_escalation_trigger_or_the_same_level():
    moderate = ConcernInput("complaint_trend", "moderate", "quality", "x", date(2026, 9, 1))
    for level in ("2", "3"):
        unit = wales_unit(levels={"quality": level}, concerns=[moderate])
        assert moves(evaluate_unit(unit, OCT, WALES)) == []


def test_wales_sustained_non_delivery_to_4():
    m = measure([80, 80, 80, 80, 80], start=month(6), trajectory=[82] * 5)
    unit = wales_unit(
        levels={"delivery": "3"},
        measures=[m],
        plans=[PlanInput("delivery", approved_on=month(6))],
        level_since={"delivery": month(3)},
    )
    assert moves(evaluate_unit(unit, OCT, WALES)) == [
        ("delivery", "3", "4", "sustained_non_delivery")
    ]
    short = replace(unit, level_since={"delivery": month(5)})  # held 5 months only
    assert moves(evaluate_unit(short, OCT, WALES)) == []


def test_wales_de_escalation_one_level():
    m = measure([86, 86, 86], start=month(8))
    plan = PlanInput("delivery", approved_on=month(3), actions_delivered=True)
    unit = wales_unit(levels={"delivery": "5"}, measures=[m], plans=[plan])
    assert moves(evaluate_unit(unit, OCT, WALES)) == [
        ("delivery", "5", "4", "sustained_improvement")
    ]


# --------------------------------------------------------------------------------------------
# Framework C (system_tiers): per-measure tiers
# --------------------------------------------------------------------------------------------


def tiers_unit(measures, levels=None, plans=(), level_since=None) -> UnitInput:
    return UnitInput(
        code="SYS",
        name="Acute trust",
        kind="organisation",
        framework="system_tiers",
        levels=levels or {},
        measures=tuple(measures),
        plans=tuple(plans),
        level_since=level_since or {},
    )


def test_tiers_per_measure_month_counts():
    one = measure([80, 86, 88, 84], code="A", name="Measure A", start=month(7))
    two = measure([86, 86, 84, 84], code="B", name="Measure B", start=month(7))
    fine = measure([86, 86, 86, 86], code="C", name="Measure C", start=month(7))
    evaluation = evaluate_unit(tiers_unit([two, one, fine]), OCT, TIERS)
    assert moves(evaluation) == [
        ("measure:A", "performing", "monitor", "one_month_under"),
        ("measure:B", "performing", "improvement_plan", "two_months_under"),
    ]


def test_tiers_forecast_failure_goes_to_improvement_plan():
    falling = measure([95, 92, 89, 86], start=month(7))
    assert moves(evaluate_unit(tiers_unit([falling]), OCT, TIERS)) == [
        ("measure:RTT26", "performing", "improvement_plan", "two_months_under")
    ]


def test_tiers_three_months_without_improvement_since_plan():
    rtt = measure([86, 84, 83, 81, 79, 78], start=month(5))
    unit = tiers_unit(
        [rtt],
        levels={"measure:RTT26": "improvement_plan"},
        plans=[PlanInput("measure:RTT26", approved_on=date(2026, 7, 20))],
    )
    (proposal,) = evaluate_unit(unit, OCT, TIERS).proposals
    assert proposal.to_level == "first_level"
    assert (
        "Referral-to-treatment within 26 weeks has missed its 85% target for 5 consecutive "
        "months (Jun 84%, Jul 83%, Aug 81%, Sep 79%, Oct 78%)" in proposal.summary
    )
    assert "since the plan was approved in July" in proposal.summary
    assert "(Aug 81%, Sep 79%, Oct 78%" in proposal.summary


def test_tiers_high_risk_escalates_sooner():
    rtt = measure([86, 84, 83, 81], start=month(7))
    plan = PlanInput("measure:RTT26", approved_on=month(9), risk_level="high")
    unit = tiers_unit([rtt], levels={"measure:RTT26": "improvement_plan"}, plans=[plan])
    assert moves(evaluate_unit(unit, OCT, TIERS)) == [
        ("measure:RTT26", "improvement_plan", "first_level", "no_improvement_since_plan")
    ]
    low = replace(unit, plans=(replace(plan, risk_level="moderate"),))
    assert moves(evaluate_unit(low, OCT, TIERS)) == []


def test_tiers_continued_failure_to_second_level():
    rtt = measure([80, 80, 80, 79, 79, 79], start=month(5))
    unit = tiers_unit(
        [rtt], levels={"measure:RTT26": "first_level"}, level_since={"measure:RTT26": month(7)}
    )
    assert moves(evaluate_unit(unit, OCT, TIERS)) == [
        ("measure:RTT26", "first_level", "second_level", "continued_failure")
    ]


def test_tiers_target_met_steps_down_one_tier():
    rtt = measure([80, 80, 86], start=month(8))
    unit = tiers_unit([rtt], levels={"measure:RTT26": "monitor"})
    evaluation = evaluate_unit(unit, OCT, TIERS)
    assert moves(evaluation) == [("measure:RTT26", "monitor", "performing", "target_met")]
    assert "has met its 85% target for 1 consecutive month" in evaluation.proposals[0].summary


def test_tiers_gap_month_in_evidence():
    rtt = measure([86, 84, None, 84], start=month(7))
    evaluation = evaluate_unit(tiers_unit([rtt]), OCT, TIERS)
    (proposal,) = evaluation.proposals
    assert proposal.to_level == "improvement_plan"
    assert "no data for Sep" in proposal.summary
    assert any("Sep 2026" in w for w in evaluation.warnings)


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------


def _tier_proposal(values):
    unit = tiers_unit([measure(values, start=month(7))])
    (proposal,) = evaluate_unit(unit, OCT, TIERS).proposals
    return proposal


def test_fingerprint_is_stable():
    assert (
        _tier_proposal([86, 86, 84, 84]).fingerprint == _tier_proposal([86, 86, 84, 84]).fingerprint
    )


def test_fingerprint_changes_when_an_evidence_value_changes():
    assert (
        _tier_proposal([86, 86, 84, 84]).fingerprint != _tier_proposal([86, 86, 84, 83]).fingerprint
    )


def test_fingerprint_ignores_data_outside_the_evidence():
    money = [FinancePoint(OCT, 600_000, 0)]
    a = iqpf_unit(finance=money, measures=[measure([86, 86, 86], start=month(8))])
    b = iqpf_unit(finance=money, measures=[measure([86, 87, 86], start=month(8))])
    (pa,) = evaluate_unit(a, OCT, IQPF).proposals
    (pb,) = evaluate_unit(b, OCT, IQPF).proposals
    assert pa.fingerprint == pb.fingerprint
    c = iqpf_unit(finance=[FinancePoint(OCT, 600_001, 0)])
    (pc,) = evaluate_unit(c, OCT, IQPF).proposals
    assert pc.fingerprint != pa.fingerprint


def test_iqpf_sustained_deterioration_spc_trend_proposes_2a():
    # Target always met, but six months falling in a row up to the period (SPC concern).
    m = measure([90, 91, 90, 91, 90, 89, 88, 87, 86, 85.5], kind="other", target=80)
    evaluation = evaluate_unit(iqpf_unit(measures=[m]), OCT, IQPF)
    assert moves(evaluation) == [("performance", "1", "2a", "key_deliverables_failing")]
    assert (
        "7 months falling in a row (Apr, May, Jun, Jul, Aug, Sep and Oct)"
        in evaluation.proposals[0].summary
    )
    flat = measure([90, 91, 90, 91, 90, 89, 88, 87, 88, 85.5], kind="other", target=80)
    assert moves(evaluate_unit(iqpf_unit(measures=[flat]), OCT, IQPF)) == []
