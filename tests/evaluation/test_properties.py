"""Property tests: whatever the data, the engine only proposes declared moves."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from state_machines import get_framework
from workflow_app.evaluation import (
    SEVERITY_ORDER,
    ConcernInput,
    FinancePoint,
    MeasureInput,
    MonthPoint,
    PlanInput,
    UnitInput,
    evaluate_unit,
    month_count,
)
from workflow_app.evaluation.rules import add_months

START = date(2025, 10, 1)
PERIOD = date(2026, 9, 1)
FRAMEWORKS = {name: get_framework(name) for name in ("iqpf", "nhs_wales", "system_tiers")}
KINDS = {
    "iqpf": "operational_directorate",
    "nhs_wales": "organisation",
    "system_tiers": "organisation",
}
DOMAINS = [
    "access_activity",
    "quality_safety_experience",
    "finance_value",
    "workforce_culture",
    "leadership",
]
MEASURE_KINDS = [
    "key_deliverable",
    "national_target",
    "local_trajectory",
    "ministerial_priority",
    "other",
]

values = st.one_of(st.none(), st.integers(70, 100).map(float))


@st.composite
def measures(draw, code: str) -> MeasureInput:
    n = draw(st.integers(0, 14))
    actuals = draw(st.lists(values, min_size=n, max_size=n))
    trajectories = draw(
        st.lists(st.one_of(st.none(), st.integers(75, 95).map(float)), min_size=n, max_size=n)
    )
    return MeasureInput(
        code=code,
        name=f"Measure {code}",
        domain=draw(st.sampled_from(DOMAINS)),
        kind=draw(st.sampled_from(MEASURE_KINDS)),
        target=float(draw(st.integers(80, 90))),
        direction=draw(st.sampled_from(["higher_is_better", "lower_is_better"])),
        tolerance=draw(st.one_of(st.none(), st.integers(0, 5).map(float))),
        unit_of_measure="percent",
        series=tuple(
            MonthPoint(add_months(START, i), a, t)
            for i, (a, t) in enumerate(zip(actuals, trajectories, strict=True))
        ),
    )


@st.composite
def units(draw) -> tuple[UnitInput, str]:
    name = draw(st.sampled_from(sorted(FRAMEWORKS)))
    fw = FRAMEWORKS[name]
    ms = tuple(draw(measures(code)) for code in draw(st.sets(st.sampled_from("ABCD"))))
    keys = []
    for track in fw.tracks.values():
        keys += [f"{track.name}:{m.code}" for m in ms] if track.per_measure else [track.name]
    levels = {k: draw(st.sampled_from(fw.track_for(k).levels)) for k in keys}
    month_dates = st.integers(0, 13).map(lambda i: add_months(START, i))
    plans = tuple(
        PlanInput(
            track=k,
            approved_on=draw(st.one_of(st.none(), month_dates)),
            actions_delivered=draw(st.booleans()),
            trajectory_met_months=draw(st.integers(0, 6)),
            risk_level=draw(st.one_of(st.none(), st.sampled_from(SEVERITY_ORDER))),
            delivery_group_report_on=draw(st.one_of(st.none(), month_dates)),
        )
        for k in keys
        if draw(st.booleans())
    )
    money = st.floats(-2_000_000, 2_000_000, allow_nan=False)
    finance = tuple(
        FinancePoint(add_months(START, i), draw(money), draw(money))
        for i in range(12)
        if draw(st.booleans())
    )
    concerns = tuple(
        ConcernInput(
            kind=draw(
                st.sampled_from(
                    [
                        "quality_standard_failed",
                        "patient_safety",
                        "serious_quality_governance_concern",
                        "inspection",
                    ]
                )
            ),
            severity=draw(st.sampled_from(SEVERITY_ORDER)),
            domain=draw(st.sampled_from(DOMAINS + ["quality", "delivery"])),
            summary="concern",
            occurred_on=draw(st.one_of(st.none(), month_dates)),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    level_since = {k: draw(month_dates) for k in keys if draw(st.booleans())}
    unit = UnitInput(
        "U", "Unit", KINDS[name], name, levels, ms, finance, concerns, plans, level_since
    )
    return unit, name


@given(units())
def test_only_declared_moves_never_the_current_level(case):
    unit, name = case
    fw = FRAMEWORKS[name]
    evaluation = evaluate_unit(unit, PERIOD, fw)
    seen = set()
    for p in evaluation.proposals:
        current = unit.levels.get(p.track, fw.initial_level(p.track))
        assert p.from_level == current
        assert p.to_level != p.from_level
        assert fw.transition(p.track, p.from_level, p.to_level) is not None
        track = fw.track_for(p.track)
        up = track.index(p.to_level) > track.index(p.from_level)
        assert p.kind == ("escalate" if up else "de_escalate")
        if not up:
            assert track.index(p.from_level) - track.index(p.to_level) == 1
        assert p.track not in seen  # at most one proposal per case
        seen.add(p.track)
        json.dumps(p.evidence)
        assert p.summary
    again = evaluate_unit(unit, PERIOD, fw)
    assert [p.fingerprint for p in again.proposals] == [p.fingerprint for p in evaluation.proposals]


@given(measures("A"), st.integers(0, 16))
def test_consecutive_under_never_exceeds_months_with_data(m, offset):
    upto = add_months(START, offset)
    result = month_count(m, upto)
    observed = [p for p in m.series if p.actual is not None and p.period <= upto]
    assert 0 <= result.consecutive_under <= len(observed)
    assert result.consecutive_met <= len(observed)
    assert len(result.under_periods) == result.consecutive_under
    assert not set(result.under_periods) & set(result.missing_periods)
