"""What the monthly reports say about the demo health board (seed 000 §7.7 and §7.11): units
at each level as they stood, the changes decided with their reasons, plans and their status,
measures in exception with charts, the finance position, and proposals for the executive."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.reports.conftest import OCT, SEP
from workflow_app.services.reports import (
    DELIVERY_COMMITTEE,
    QUALITY_COMMITTEE,
    build_report,
    canonical_json,
)


def units_at(content: dict, track: str, level: str) -> list[str]:
    for row in content["levels"]["summary"]:
        if (row["track"], row["level"]) == (track, level):
            return row["units"]
    return []


@pytest.fixture(scope="module")
def built(demo_app) -> dict:
    """The reports these checks read, built once (each build evaluates every unit)."""
    with demo_app.app_context():
        return {
            "september": build_report("executive_overview", SEP),
            "october": build_report("executive_overview", OCT),
            "committee": build_report("committee", OCT),
        }


@pytest.fixture
def september(built) -> dict:
    return built["september"]


@pytest.fixture
def october(built) -> dict:
    return built["october"]


def test_levels_are_the_position_at_the_end_of_the_decision_month(september):
    # September's returns were decided on in October: the position at the end of October.
    assert september["as_at_text"] == "the end of 31 October 2026"
    assert units_at(september, "performance", "2a") == ["CSS", "PCC", "UNSCH"]
    assert units_at(september, "performance", "3") == ["MHLD", "SURG"]
    assert units_at(september, "performance", "1") == [
        "CCHS", "EST", "FIN", "MED", "SDIH", "WACH", "WOD"
    ]  # fmt: skip
    assert len(units_at(september, "finance", "1")) == 12
    surgery = next(u for u in september["levels"]["units"] if u["code"] == "SURG")
    (performance,) = [t for t in surgery["tracks"] if t["track"] == "performance"]
    assert (performance["level_title"], performance["since_text"]) == (
        "Level 3",
        "15 September 2026",
    )
    assert surgery["headline_level"] == "3"


def test_a_past_month_shows_the_levels_as_they_were_not_as_they_are(demo):
    april = build_report("executive_overview", date(2026, 4, 1))
    # At the end of May 2026 Surgery had just gone to 2a; it reached 3 only in September.
    assert units_at(april, "performance", "2a") == ["PCC", "SURG"]
    assert units_at(april, "performance", "3") == ["MHLD"]
    assert [(c["unit_code"], c["kind"], c["to_level"], c["status"]) for c in april["changes"]] == [
        ("SURG", "escalate", "2a", "approved"),
        ("WOD", "earned_autonomy", "1", "rejected"),
    ]


def test_changes_carry_their_reasons_who_signed_and_the_outcome(september):
    changes = {(c["unit_code"], c["kind"]): c for c in september["changes"]}
    assert set(changes) == {("MED", "escalate"), ("WACH", "de_escalate")}
    declined = changes[("MED", "escalate")]
    assert declined["outcome_title"] == "Declined"
    assert declined["period_text"] == "September 2026"
    assert "Sustained deterioration" in declined["reason"]
    assert "judged the deviation not yet material" in declined["note"]
    assert declined["signed_by"] == ["Gareth Bowen (Executive Director)"]
    stepped_down = changes[("WACH", "de_escalate")]
    assert (stepped_down["from_title"], stepped_down["to_title"]) == (
        "Level 2a",
        "Level 1: Normal arrangements",
    )
    assert stepped_down["outcome_title"] == "Approved"
    assert "delivered" in stepped_down["reason"]


def test_plans_with_their_status_and_latest_action_updates(september):
    plans = {(p["unit_code"], p["status"]) for p in september["plans"]}
    # Mental Health's plan is failing; Women & Children's completed in the window (it stepped
    # down); the others are in delivery.
    assert ("MHLD", "failing") in plans
    assert ("WACH", "completed") in plans
    assert {"SURG", "UNSCH", "PCC", "CSS"} <= {code for code, status in plans}
    mental_health = next(p for p in september["plans"] if p["unit_code"] == "MHLD")
    assert mental_health["trajectory"].startswith("Missed its trajectory")
    # Its lead reported every action off track in September (October's updates come later).
    assert {(a["status"], a["update_month"]) for a in mental_health["actions"]} == {
        ("off_track", "September 2026")
    }
    assert mental_health["action_counts"]["off_track"] == len(mental_health["actions"])


def test_measures_in_exception_with_charts_and_words(october):
    red = {(e["unit_code"], e["measure_code"]) for e in october["exceptions"]}
    assert {("MHLD", "CAMHS28"), ("UNSCH", "ED4H"), ("SURG", "CANC62")} <= red
    assert {e["unit_code"] for e in october["exceptions"]} <= {"MHLD", "SURG", "UNSCH", "MED"}
    for exception in october["exceptions"]:
        assert exception["rag"] == "red"
        chart = exception["chart"]
        assert len(chart["points"]) == 12 and chart["points"][-1][0] == "2026-10-01"
        assert chart["rag"]["2026-10-01"] == "red"
        assert exception["description"]  # the chart's text alternative
    assert all(e["rag"] == "amber" and "chart" not in e for e in october["watch"])


def test_finance_position_flags_the_two_designed_breaches(october):
    finance = {row["unit_code"]: row for row in october["finance"]["rows"]}
    assert len(finance) == 12 and october["finance"]["missing"] == []
    breaches = {
        code: (row["ytd_breach"], row["forecast_breach"])
        for code, row in finance.items()
        if row["ytd_breach"] or row["forecast_breach"]
    }
    assert breaches == {"UNSCH": (True, False), "WACH": (False, True)}
    assert finance["UNSCH"]["ytd_variance"] > 500_000
    assert finance["FIN"]["ytd_variance"] < 0  # Finance underspends
    assert finance["UNSCH"]["ytd_text"].startswith("£")


def test_the_executive_overview_lists_what_awaits_decision(october):
    assert october["changes"] == []  # nothing decided on October's returns yet
    proposals = {(p["unit_code"], p["track_title"], p["to_level"]) for p in october["proposals"]}
    assert proposals == {
        ("MED", "Performance", "2a"),
        ("UNSCH", "Finance", "2b"),
        ("WACH", "Finance", "2b"),
    }
    assert all(p["reason"] and p["period_text"] == "October 2026" for p in october["proposals"])
    concerns = {(c["unit_code"], c["kind_title"]) for c in october["concerns"]}
    assert concerns == {("UNSCH", "Complaints trend"), ("MED", "Incidents trend")}
    assert october["missing_returns"] == {"finance": [], "measures": []}


def test_the_committee_report_shows_decided_matters_by_committee(built):
    committee, executive = built["committee"], built["october"]
    assert "proposals" not in committee and "missing_returns" not in committee
    assert committee["committees"] == [DELIVERY_COMMITTEE, QUALITY_COMMITTEE]
    by_committee = {(e["measure_code"], e["committee"]) for e in committee["exceptions"]}
    assert ("CTP", QUALITY_COMMITTEE) in by_committee  # a quality measure
    assert ("ED4H", DELIVERY_COMMITTEE) in by_committee  # an access measure
    for key in ("levels", "plans", "finance", "exceptions"):
        assert committee[key] == executive[key]


def test_the_content_is_plain_data_that_round_trips_through_json(september):
    text = canonical_json(september)
    assert json.loads(text) == september
    assert canonical_json(json.loads(text)) == text
