"""The demo health board: people, units, measures, 18 months of data, cases and history.

``load_demo`` fills an *empty* database with a plausible "Demo Health Board" run on
framework A (``iqpf``, DOMAIN.md), so that the first monthly review has something to say:

* most units sit at Level 1 with green and amber measures;
* Surgery (SURG) and Unscheduled Care (UNSCH) have two key deliverables missing target for
  three or more consecutive recent months (2a evidence); Mental Health (MHLD) has been red on
  its key deliverables for over a year;
* Medicine (MED) has inpatient falls worsening for eight months running (an SPC trend);
* Primary Care & Community (PCC) has one month missing on one measure (a data-quality warning);
* in the latest month exactly two units breach the Level 2b finance trigger (seed 000, 7.8
  table: overspend > £0.5m year to date or > £1m forecast): UNSCH on year-to-date, WACH on
  forecast only; MED sits just under the YTD threshold; Finance (FIN) underspends.

Every number comes from ``random.Random(seed)`` (never the global generator) in a fixed order,
so the same seed and the same ``today`` give identical data. Values are generated in
"goodness" units: ``g = direction * (value - target) / tolerance`` (positive = better than
target, -1 = one tolerance worse than target), which lets one generator serve every measure.

The body has lived through its months (``_live_history``): from the seventh month on, each
month's review ran when the scheduler would have run it, and the demo Executive Team and
Chief Executive decided its proposals through ``services.decisions`` (re-entering the demo
passwords), so the level changes, letters, deadlines, cadence and e-mails are the real
consequences, dated when they happened. The review is ``review.run_review`` unchanged: it
judges the recovery plans the units wrote, had reviewed and reported on in the history
(``_Agenda``, through ``services.plans`` and ``services.plan_delivery``), and proposes earned
autonomy, which the Executive Team defers to the unit's six-monthly review. With the default
seed, 18 months and framework A: Mental Health goes to 2a and then 3, Primary Care, Surgery,
Women & Children, Clinical Support and Unscheduled Care to 2a, Surgery on to 3; the Executive
Team twice declines Medicine's 2a on judgement, and steps Women & Children down. The latest
month's review is left to the running app, so its proposals (Medicine's 2a, the two 2b
breaches) await decision.

The loader only flushes; the caller commits (``escalate demo``).
"""

from __future__ import annotations

import heapq
import json
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from random import Random

import sqlalchemy as sa

from state_machines import get_framework, parse_duration
from workflow_app.clock import LONDON, today_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import (
    Concern,
    Decision,
    EscalationCase,
    LevelChange,
)
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.org import Domain, Person, RoleGrant, Unit
from workflow_app.models.roles import (
    CEO,
    COMMITTEE_MEMBER,
    DIRECTORATE_LEAD,
    EXECUTIVE_DIRECTOR,
    PERFORMANCE_TEAM,
    ROLE_TITLES,
    SYSTEM_ADMIN,
)
from workflow_app.services.audit import record_event
from workflow_app.services.org import open_cases_for_unit
from workflow_app.services.passwords import hash_password

DEMO_SEED = 2026
DEMO_FRAMEWORK = "iqpf"
DEMO_EMAIL_DOMAIN = "demo.escalate.test"
MIN_MONTHS = 12  # the story (Mental Health's history) needs a year of data

# Demo only: printed by ``escalate demo`` and shown on the demo log-in page.
DEMO_PASSWORDS: dict[str, str] = {  # noqa: S105 - published demo credentials
    CEO: "demo-ceo-password",
    EXECUTIVE_DIRECTOR: "demo-executive-password",
    DIRECTORATE_LEAD: "demo-lead-password",
    PERFORMANCE_TEAM: "demo-performance-password",
    COMMITTEE_MEMBER: "demo-committee-password",
    SYSTEM_ADMIN: "demo-admin-password",
}

# 2b thresholds (seed 000, 7.8 table; iqpf.yaml trigger finance_overspend). The demo keeps
# every unit under them in every month except the two designed breaches in the latest month.
YTD_THRESHOLD = 500_000
FORECAST_THRESHOLD = 1_000_000


@dataclass(frozen=True)
class DemoLogin:
    """One demo user a visitor can sign in as."""

    role: str
    role_title: str
    name: str
    email: str
    password: str


# role -> (name, e-mail local part, job title)
_LOGIN_PEOPLE: dict[str, tuple[str, str, str]] = {
    CEO: ("Carys Llewellyn", "ceo", "Chief Executive"),
    EXECUTIVE_DIRECTOR: ("Gareth Bowen", "director.operations", "Director of Operations"),
    DIRECTORATE_LEAD: ("Dr Bethan Griffiths", "surgery.lead", "Clinical Director, Surgery"),
    PERFORMANCE_TEAM: ("Owain Davies", "performance.team", "Head of Performance"),
    COMMITTEE_MEMBER: (
        "Professor Alun Thomas",
        "committee.member",
        "Independent Member; Chair, Delivery and Performance Committee",
    ),
    SYSTEM_ADMIN: ("Sam Okafor", "sysadmin", "Digital Services Systems Administrator"),
}


def demo_logins() -> list[DemoLogin]:
    """The demo log-ins, one per built-in role, in a stable order."""
    return [
        DemoLogin(
            role=role,
            role_title=ROLE_TITLES[role],
            name=name,
            email=f"{local}@{DEMO_EMAIL_DOMAIN}",
            password=DEMO_PASSWORDS[role],
        )
        for role, (name, local, _title) in _LOGIN_PEOPLE.items()
    ]


# --- the organisation ----------------------------------------------------------------------

DOMAINS: tuple[tuple[str, str], ...] = (
    ("access_activity", "Access & Activity"),
    ("quality_safety_experience", "Quality, Safety & Patient Experience"),
    ("finance_value", "Finance & Value"),
    ("workforce_culture", "Workforce & Culture"),
    ("leadership", "Leadership (Well-led)"),
)

# key -> (name, job title); executive directors (the demo executive is "ops").
_EXECUTIVES: dict[str, tuple[str, str]] = {
    "finance": ("Helen Pritchard", "Director of Finance"),
    "medical": ("Dr Rajesh Menon", "Medical Director"),
    "nursing": ("Eleri Vaughan", "Director of Nursing & Midwifery"),
    "workforce": ("Mark Jenkins", "Director of Workforce & OD"),
    "planning": ("Nia Roberts", "Director of Planning & Performance"),
}
_ANALYSTS = (
    ("Ffion Hughes", "Senior Performance Analyst"),
    ("Tom Ashworth", "Information Analyst"),
)
_COMMITTEE = (
    ("Janet Morris", "Independent Member (Finance)"),
    ("Dilwyn Parry", "Vice Chair"),
)
# Leads and budget holders that are not demo log-ins: key -> (name, job title).
_STAFF: dict[str, tuple[str, str]] = {
    "unsch_lead": ("Dr Siân Rees", "Clinical Director, Unscheduled Care"),
    "unsch_gm": ("Kevin Lloyd", "General Manager, Unscheduled Care"),
    "surg_gm": ("Ioan Price", "General Manager, Surgery"),
    "med_lead": ("Dr Emma Watkins", "Clinical Director, Medicine"),
    "med_gm": ("Rhodri Evans", "General Manager, Medicine"),
    "wach_lead": ("Angharad Lewis", "Director of Midwifery and Women & Children"),
    "mhld_lead": ("Dr Paul Hargreaves", "Clinical Director, Mental Health & Learning Disabilities"),
    "mhld_gm": ("Lowri Jones", "Head of Service, Mental Health & Learning Disabilities"),
    "pcc_lead": ("Huw Edwards", "Director of Primary Care & Community Services"),
    "css_lead": ("Dr Priya Shah", "Clinical Director, Clinical Support Services"),
    "css_gm": ("Gethin Morgan", "General Manager, Clinical Support Services"),
    "fin_lead": ("Claire Phillips", "Deputy Director of Finance"),
    "wod_lead": ("Rebecca Hall", "Deputy Director of Workforce & OD"),
    "est_lead": ("Dafydd James", "Head of Estates & Facilities"),
    "sdih_lead": ("Martin Cole", "Hospital Director, St Dyfrig Independent Hospital"),
    "cchs_lead": ("Catrin Powell", "Managing Director, Cwm Community Health Services"),
    "commissioning": ("Sarah Bennett", "Head of Commissioning"),
}


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    kind: str
    executive: str  # key in _EXECUTIVES, or "ops" for the demo executive director
    lead: str  # key in _STAFF, or "demo_lead"
    budget_holder: str
    annual_budget: int  # GBP, latest financial year
    measures: tuple[str, ...]  # keys in MEASURES
    finance: tuple[int, int] | None = None  # fixed (YTD, forecast) variance in the latest month


UNITS: tuple[UnitSpec, ...] = (
    UnitSpec(
        "UNSCH",
        "Unscheduled Care",
        "operational_directorate",
        "ops",
        "unsch_lead",
        "unsch_gm",
        64_300_000,
        ("ED4H", "AMBH", "ED12H", "SEPSIS", "COMPL30", "AGENCY", "SICK", "MANDTR", "RISKREV"),
        finance=(742_310, 968_400),  # breaches 2b on YTD only
    ),
    UnitSpec(
        "SURG",
        "Surgery",
        "operational_directorate",
        "ops",
        "demo_lead",
        "surg_gm",
        78_900_000,
        ("RTT18", "CANC62", "THEAT", "CDIFF", "VTE", "AGENCY", "CIP", "SICK", "APPR"),
    ),
    UnitSpec(
        "MED",
        "Medicine",
        "operational_directorate",
        "ops",
        "med_lead",
        "med_gm",
        71_400_000,
        ("LOS", "MFFD", "STROKE", "FALLS", "PU", "AGENCY", "SICK", "VAC", "MANDTR"),
        finance=(480_120, 912_000),  # close to, but under, both thresholds
    ),
    UnitSpec(
        "WACH",
        "Women & Children",
        "operational_directorate",
        "nursing",
        "wach_lead",
        "wach_lead",
        38_200_000,
        ("ANTE10", "IMMS", "PAEDOP", "CTG", "COMPL30", "AGENCY", "SICK", "MANDTR"),
        finance=(412_650, 1_126_000),  # breaches 2b on forecast only
    ),
    UnitSpec(
        "MHLD",
        "Mental Health & Learning Disabilities",
        "operational_directorate",
        "nursing",
        "mhld_lead",
        "mhld_gm",
        52_600_000,
        ("MHPART1", "CAMHS28", "PSYTH", "CTP", "RESTR", "AGENCY", "SICK", "APPR", "AUDACT"),
    ),
    UnitSpec(
        "PCC",
        "Primary Care & Community",
        "operational_directorate",
        "planning",
        "pcc_lead",
        "pcc_lead",
        88_100_000,
        ("COMM14", "GPOOH", "THER14", "CPU", "COMPL30", "AGENCY", "CIP", "SICK", "MANDTR"),
    ),
    UnitSpec(
        "CSS",
        "Clinical Support Services",
        "operational_directorate",
        "medical",
        "css_lead",
        "css_gm",
        45_300_000,
        ("DIAG6", "RADREP", "PATH24", "MEDREC", "INCID", "AGENCY", "SICK", "VAC"),
    ),
    UnitSpec(
        "FIN",
        "Finance",
        "corporate_department",
        "finance",
        "fin_lead",
        "fin_lead",
        9_600_000,
        ("PSPP", "BUDREP", "PAYACC", "AGENCY", "CIP", "SICK", "APPR", "AUDACT"),
        finance=(-186_400, -240_000),  # underspending
    ),
    UnitSpec(
        "WOD",
        "Workforce & OD",
        "corporate_department",
        "workforce",
        "wod_lead",
        "wod_lead",
        6_300_000,
        ("TTH", "DBS", "ERCASE", "OHREF", "AGENCY", "SICK", "MANDTR", "RISKREV"),
    ),
    UnitSpec(
        "EST",
        "Estates & Facilities",
        "corporate_department",
        "finance",
        "est_lead",
        "est_lead",
        31_200_000,
        ("URGJOB", "PORTER", "CLEAN", "FIRERA", "AGENCY", "SICK", "VAC", "RISKREV"),
    ),
    UnitSpec(
        "SDIH",
        "St Dyfrig Independent Hospital",
        "commissioned_provider",
        "planning",
        "sdih_lead",
        "commissioning",
        14_200_000,
        ("CONACT", "PROV18", "SSI", "READM", "CONVAR", "FILL", "MANDTR", "CQPRM"),
    ),
    UnitSpec(
        "CCHS",
        "Cwm Community Health Services",
        "commissioned_provider",
        "planning",
        "cchs_lead",
        "commissioning",
        22_400_000,
        ("UCR2H", "CONTACTS", "CPU", "FFT", "CONVAR", "VAC", "MANDTR", "CQPRM"),
    ),
)

# Finance positions of the units without a fixed latest position: (YTD, forecast) ranges.
_FINANCE_RANGES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "SURG": ((280_000, 330_000), (600_000, 680_000)),
    "MHLD": ((200_000, 250_000), (420_000, 480_000)),
    "PCC": ((-60_000, -20_000), (0, 40_000)),
    "CSS": ((80_000, 110_000), (150_000, 190_000)),
    "WOD": ((5_000, 25_000), (15_000, 45_000)),
    "EST": ((-80_000, -45_000), (-120_000, -70_000)),
    "SDIH": ((120_000, 160_000), (280_000, 340_000)),
    "CCHS": ((-40_000, -10_000), (-5_000, 25_000)),
}


@dataclass(frozen=True)
class MeasureSpec:
    name: str
    domain: str
    kind: str
    target: float
    direction: str
    tolerance: float
    unit_of_measure: str
    decimals: int
    lower_bound: float = 0.0
    upper_bound: float | None = None  # None: 100 for percentages, unbounded otherwise
    owner: str = "lead"  # lead | budget_holder
    # Scales target and tolerance by the unit's size (agency spend).
    scale_with_budget: bool = False

    @property
    def sign(self) -> int:
        return 1 if self.direction == "higher_is_better" else -1

    @property
    def maximum(self) -> float | None:
        if self.upper_bound is not None:
            return self.upper_bound
        return 100.0 if self.unit_of_measure == "percent" else None


_KD, _NT, _LT = "key_deliverable", "national_target", "local_trajectory"

# One measure a line: code, domain (A access, Q quality, F finance, W workforce, L leadership),
# kind (KD key deliverable, NT national target, LT local trajectory, QS quality standard,
# OT other), target, H/L (higher or lower is better), tolerance (absolute; amber within it),
# unit of measure, decimals, upper bound ("-": 100 for percentages), name. Money measures
# (gbp) give target and tolerance as a share of the unit's monthly budget.
_MEASURE_TABLE = """
ED4H     A KD  95     H 3      percent 1 -   Emergency department: seen within 4 hours (%)
AMBH     A KD  120    L 20     count   0 -   Ambulance handovers taking over 1 hour
ED12H    A NT  50     L 15     count   0 -   Patients over 12 hours in the emergency department
RTT18    A KD  92     H 2      percent 1 -   Referral to treatment within 18 weeks (%)
CANC62   A KD  75     H 5      percent 1 -   Cancer: treatment started within 62 days (%)
THEAT    A LT  85     H 5      percent 1 -   Theatre utilisation (%)
LOS      A LT  7.5    L 0.5    days    1 -   Average length of stay (days)
MFFD     A KD  40     L 8      count   0 -   Medically fit patients awaiting discharge
STROKE   A NT  60     H 8      percent 1 -   Stroke: admitted to a stroke unit within 4 hours (%)
ANTE10   A LT  80     H 5      percent 1 -   Women booked for antenatal care by 10 weeks (%)
IMMS     A NT  95     H 3      percent 1 -   Children fully immunised by age 4 (%)
PAEDOP   A KD  60     L 15     count   0 -   Paediatric outpatients waiting over 26 weeks
MHPART1  A KD  80     H 5      percent 1 -   Mental Health Measure Part 1: assessed in 28 days (%)
CAMHS28  A KD  80     H 5      percent 1 -   CAMHS: assessments within 28 days (%)
PSYTH    A NT  80     H 5      percent 1 -   Psychological therapies started within 26 weeks (%)
COMM14   A LT  90     H 4      percent 1 -   Community referrals seen within 14 days (%)
GPOOH    A NT  90     H 5      percent 1 -   GP out of hours: urgent patients seen in 1 hour (%)
THER14   A KD  30     L 10     count   0 -   Therapy patients waiting over 14 weeks
DIAG6    A NT  150    L 30     count   0 -   Patients waiting over 6 weeks for a diagnostic test
RADREP   A KD  90     H 5      percent 1 -   Radiology reports issued within 7 days (%)
PATH24   A LT  95     H 2      percent 1 -   Pathology results within 24 hours (%)
PSPP     A NT  95     H 2      percent 1 -   Non-NHS invoices paid within 30 days (%)
BUDREP   A KD  95     H 4      percent 1 -   Budget reports issued by working day 8 (%)
TTH      A KD  60     L 8      days    0 -   Time to hire: advert to unconditional offer (days)
DBS      A LT  90     H 5      percent 1 -   DBS checks completed within 14 days (%)
URGJOB   A KD  95     H 3      percent 1 -   Urgent estates jobs completed within 24 hours (%)
PORTER   A LT  90     H 5      percent 1 -   Portering requests met within 30 minutes (%)
CONACT   A KD  100    H 5      percent 1 112 Contracted elective activity delivered (%)
PROV18   A NT  92     H 3      percent 1 -   Patients treated within 18 weeks of referral (%)
UCR2H    A NT  70     H 5      percent 1 -   Urgent community response within 2 hours (%)
CONTACTS A KD  100    H 5      percent 1 112 Community contacts delivered against contract (%)
SEPSIS   Q QS  90     H 5      percent 1 -   Sepsis: antibiotics within 1 hour (%)
COMPL30  Q OT  75     H 5      percent 1 -   Complaints answered within 30 working days (%)
CDIFF    Q QS  2      L 1      count   0 -   C. difficile cases (hospital onset)
VTE      Q QS  95     H 3      percent 1 -   VTE risk assessment within 24 hours of admission (%)
FALLS    Q OT  6.0    L 0.6    ratio   2 -   Inpatient falls per 1,000 bed days
PU       Q QS  2      L 1      count   0 -   Hospital-acquired pressure ulcers (grade 3+)
CTG      Q QS  95     H 3      percent 1 -   Maternity: fresh-eyes CTG review compliance (%)
CTP      Q QS  90     H 5      percent 1 -   Care and treatment plans in place (%)
RESTR    Q OT  25     L 6      count   0 -   Restrictive practice incidents
CPU      Q QS  3      L 1      count   0 -   Community-acquired pressure ulcers (grade 3+)
MEDREC   Q QS  80     H 5      percent 1 -   Medicines reconciliation within 24 hours (%)
INCID    Q OT  80     H 5      percent 1 -   Incidents closed within 60 working days (%)
PAYACC   Q QS  99.0   H 0.5    percent 2 -   Payroll accuracy (%)
ERCASE   Q OT  8      L 3      count   0 -   Employee relations cases open over 6 months
OHREF    Q QS  85     H 5      percent 1 -   Occupational health referrals seen in 10 days (%)
CLEAN    Q QS  98     H 1      percent 1 -   Cleaning audit score, very high risk areas (%)
FIRERA   Q OT  95     H 3      percent 1 -   Fire risk assessments in date (%)
SSI      Q QS  2.0    L 0.5    ratio   2 -   Surgical site infections per 100 procedures
READM    Q OT  3.0    L 0.5    percent 2 -   Emergency readmissions within 30 days (%)
FFT      Q OT  90     H 3      percent 1 -   Friends and Family Test: positive responses (%)
AGENCY   F LT  0.025  L 0.0025 gbp     0 -   Agency staff spend (£ per month)
CIP      F OT  100    H 5      percent 1 110 Savings plan delivered against plan (%)
CONVAR   F OT  0.004  L 0.0012 gbp     0 -   Contract over-performance (£ per month)
SICK     W LT  5.4    L 0.6    percent 2 -   Sickness absence (%)
VAC      W OT  7.0    L 1.0    percent 1 -   Vacancy rate (%)
MANDTR   W NT  85     H 5      percent 1 -   Mandatory training compliance (%)
APPR     W NT  85     H 5      percent 1 -   Appraisal (PADR) in the last 12 months (%)
FILL     W OT  95     H 3      percent 1 -   Registered nurse shift fill rate (%)
RISKREV  L OT  90     H 5      percent 1 -   Risk register entries reviewed in date (%)
AUDACT   L OT  3      L 2      count   0 -   Overdue internal audit actions
CQPRM    L OT  85     H 8      percent 1 -   Contract review (CQPRM) actions closed on time (%)
"""


def _parse_measures(table: str) -> dict[str, MeasureSpec]:
    domains = dict(zip("AQFWL", (code for code, _name in DOMAINS), strict=True))
    kinds = {"KD": _KD, "NT": _NT, "LT": _LT, "QS": "quality_standard", "OT": "other"}
    measures = {}
    for line in table.strip().splitlines():
        code, domain, kind, target, better, tol, uom, decimals, top, name = line.split(None, 9)
        measures[code] = MeasureSpec(
            name=name,
            domain=domains[domain],
            kind=kinds[kind],
            target=float(target),
            direction="higher_is_better" if better == "H" else "lower_is_better",
            tolerance=float(tol),
            unit_of_measure=uom,
            decimals=int(decimals),
            upper_bound=None if top == "-" else float(top),
            owner="budget_holder" if domain == "F" else "lead",
            scale_with_budget=uom == "gbp",
        )
    return measures


MEASURES: dict[str, MeasureSpec] = _parse_measures(_MEASURE_TABLE)


# --- the story: per-month regimes in goodness units --------------------------------------


@dataclass(frozen=True)
class Regime:
    """How one month of one measure is generated, in goodness units (see module docstring).

    ``steady``: noise around the measure's own comfortable level, amber at worst;
    ``fixed``: ``center`` with small noise, kept within ``[low, high]``;
    ``exact``: ``center`` to within +-0.03 (used for the deliberate trend);
    ``missing``: no actual that month (a data-quality gap).
    """

    mode: str
    center: float = 0.0
    low: float = -6.0
    high: float = 6.0
    red: bool = False  # also below the month's trajectory


STEADY = Regime("steady")


def _red(center: float) -> Regime:
    """Red: target, tolerance (g < -1) and trajectory all missed."""
    return Regime("fixed", center, low=-5.0, high=-1.15, red=True)


@dataclass
class _Story:
    """Designed regimes and trajectories; anything not listed is steady on target."""

    regimes: dict[tuple[str, str], dict[int, Regime]]
    trajectories: dict[tuple[str, str], dict[int, float]]


def _story(n: int) -> _Story:
    """The designed part of the demo, as month indexes (``n - 1`` is the latest month)."""
    regimes: dict[tuple[str, str], dict[int, Regime]] = {}
    trajectories: dict[tuple[str, str], dict[int, float]] = {}

    def put(key: tuple[str, str], first: int, items: list[Regime]) -> None:
        for offset, regime in enumerate(items):
            if 0 <= first + offset < n:
                regimes.setdefault(key, {})[first + offset] = regime

    def plan(key: tuple[str, str], first: int, values: list[float]) -> None:
        for offset, value in enumerate(values):
            if 0 <= first + offset < n:
                trajectories.setdefault(key, {})[first + offset] = value

    # Unscheduled Care: two key deliverables red for the last four months (2a evidence).
    put(("UNSCH", "ED4H"), n - 4, [_red(c) for c in (-1.7, -2.3, -2.0, -2.6)])
    put(("UNSCH", "AMBH"), n - 4, [_red(c) for c in (-1.5, -2.2, -1.9, -2.4)])
    # ... and complaints answered late for two months (the complaints-trend concern).
    put(
        ("UNSCH", "COMPL30"),
        n - 3,
        [Regime("fixed", 0.6, 0.1, 2.0)] + [Regime("fixed", -0.5, -0.9, -0.2)] * 2,
    )

    # Surgery: RTT and cancer red for seven months; escalated to 2a at the Executive Team in
    # month n-3 (on data to n-4); the recovery plan's trajectory starts in month n-2. RTT
    # meets its recovery trajectory in the latest month (amber), cancer does not (red).
    surgery_red = [-1.8, -2.4, -2.1, -2.6, -2.3, -2.2]
    put(("SURG", "RTT18"), n - 7, [_red(c) for c in surgery_red])
    put(("SURG", "RTT18"), n - 1, [Regime("fixed", -1.22, -1.28, -1.16)])
    put(("SURG", "CANC62"), n - 7, [_red(c) for c in (-1.6, -2.2, -1.9, -2.5, -2.2, -2.4, -2.1)])
    for code in ("RTT18", "CANC62"):
        plan(("SURG", code), n - 2, [-1.8, -1.3])

    # Mental Health: Part 1 and CAMHS red for 14 months; 2a at month n-10, recovery failed,
    # Level 3 at month n-5; a new plan from n-4, still red but edging up.
    part1 = [-1.6, -2.0, -1.8, -2.4, -2.2, -2.6, -2.5, -2.8, -2.6, -2.7, -2.9, -2.4, -2.5, -2.1]
    camhs = [-1.4, -1.9, -1.7, -2.1, -2.6, -2.3, -2.8, -2.4, -2.9, -2.6, -3.0, -2.5, -2.7, -2.3]
    put(("MHLD", "MHPART1"), n - 14, [_red(c) for c in part1])
    put(("MHLD", "CAMHS28"), n - 14, [_red(c) for c in camhs])
    put(("MHLD", "CTP"), n - 8, [_red(c) for c in (-1.4, -1.9, -1.6, -2.2, -1.8, -2.0, -1.7, -1.9)])
    for code in ("MHPART1", "CAMHS28"):
        plan(("MHLD", code), n - 9, [-2.0, -1.8, -1.6, -1.4, -1.2])
        plan(("MHLD", code), n - 4, [-2.0, -1.8, -1.6, -1.4])

    # Medicine: inpatient falls worsening eight months running (an SPC trend), ending amber.
    put(
        ("MED", "FALLS"),
        n - 8,
        [Regime("exact", 1.6 - 0.3 * step) for step in range(8)],
    )

    # Primary Care & Community: one month missing on one measure (data-quality warning).
    put(("PCC", "COMM14"), n - 3, [Regime("missing")])
    return _Story(regimes, trajectories)


# --- generation ------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _periods(today: date, months: int) -> list[date]:
    """The ``months`` complete months before today's month, oldest first."""
    latest = _add_months(today.replace(day=1), -1)
    return [_add_months(latest, -(months - 1 - i)) for i in range(months)]


def _financial_year(period: date) -> int:
    """The calendar year in which the period's April-to-March financial year starts."""
    return period.year if period.month >= 4 else period.year - 1


def _month_of_year(period: date) -> int:
    """1 for April ... 12 for March."""
    return (period.month - 4) % 12 + 1


@dataclass
class _Series:
    values: list[float | None]
    trajectory: list[float]


def _monotone_run(values: list[float]) -> bool:
    """True when the values are strictly increasing or strictly decreasing throughout."""
    pairs = list(zip(values, values[1:], strict=False))
    return all(b > a for a, b in pairs) or all(b < a for a, b in pairs)


class _Generator:
    """Turns a measure's regimes into rounded values (value space) with seeded noise."""

    # At most this many points in a row may move strictly one way outside designed trends
    # (an SPC "trend" is six or seven).
    MAX_RUN_POINTS = 4

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def series(
        self,
        spec: MeasureSpec,
        target: float,
        tolerance: float,
        regimes: dict[int, Regime],
        trajectory_g: dict[int, float],
        periods: list[date],
    ) -> _Series:
        rng = self.rng
        n = len(periods)
        sign = spec.sign
        step = 10.0**-spec.decimals

        def to_value(g: float) -> float:
            return round(target + sign * g * tolerance, spec.decimals)

        def to_g(value: float) -> float:
            return sign * (value - target) / tolerance

        # Physical limits (0 and, for percentages, 100) in goodness units; steady values
        # stay within 3 tolerances of target.
        top = to_g(spec.maximum) if spec.maximum is not None else 6.0 * sign
        bottom = to_g(spec.lower_bound)
        g_floor, g_ceiling = min(top, bottom), min(0.98 * max(top, bottom), 3.0)

        # Trajectories: designed ones, else (national and local trajectory measures, sometimes)
        # a plan that starts each financial year below target and reaches it by March.
        ramps = spec.kind in (_NT, _LT) and rng.random() < 0.3
        depth = rng.uniform(0.4, 0.8)
        traj_g: list[float] = []
        for i, period in enumerate(periods):
            if i in trajectory_g:
                traj_g.append(trajectory_g[i])
            elif ramps:
                traj_g.append(-depth * (12 - _month_of_year(period)) / 12)
            else:
                traj_g.append(0.0)
        trajectory = [to_value(g) for g in traj_g]

        center = min(rng.uniform(0.25, 1.2), 0.6 * g_ceiling)
        noise = 0.0
        values: list[float | None] = []
        history: list[float] = []  # values present, for the run check
        misses = 0
        max_misses = 1 if spec.kind == _KD else 2
        for i in range(n):
            regime = regimes.get(i, STEADY)
            noise = 0.5 * noise + rng.gauss(0, 0.45)
            small = rng.gauss(0, 0.08)
            if regime.mode == "missing":
                values.append(None)
                continue
            traj_met = to_g(trajectory[i])
            if regime.mode == "steady":
                # Amber at worst: within tolerance, and on trajectory for trajectory measures.
                low = traj_met if spec.kind in (_NT, _LT) else -0.9
                if misses >= max_misses:
                    low = max(low, 0.0)
                low, high = max(low, g_floor), g_ceiling
                g = _reflect(center + noise, low, high)
            elif regime.mode == "exact":
                low, high = -6.0, 6.0
                g = regime.center + rng.uniform(-0.03, 0.03)
            else:
                low, high = regime.low, regime.high
                if regime.red:
                    high = min(high, traj_met - 0.05)
                g = min(max(regime.center + small, low), high)
            value = self._fit(to_value(g), to_g, low, high, step, sign)
            run_check = regime.mode != "exact" and len(history) >= self.MAX_RUN_POINTS
            if run_check and _monotone_run(history[-self.MAX_RUN_POINTS :] + [value]):
                value = self._break_run(history[-1], value, to_g, to_value, low, high)
            values.append(value)
            history.append(value)
            misses = misses + 1 if to_g(value) < 0 else 0
        return _Series(values, trajectory)

    @staticmethod
    def _fit(value, to_g, low, high, step, sign) -> float:
        """Nudge a rounded value back inside [low, high] (goodness) if rounding pushed it out."""
        for _ in range(5):
            g = to_g(value)
            if g < low - 1e-9:
                value = round(value + sign * step, 10)
            elif g > high + 1e-9:
                value = round(value - sign * step, 10)
            else:
                break
        return value

    @staticmethod
    def _break_run(previous, value, to_g, to_value, low, high) -> float:
        """Reverse the month's movement (mirror it about last month), else repeat last month."""

        def allowed(candidate: float) -> bool:
            return low - 1e-9 <= to_g(candidate) <= high + 1e-9

        mirrored = to_value(2 * to_g(previous) - to_g(value))
        if allowed(mirrored) and mirrored != previous:
            return mirrored
        return previous if allowed(previous) else value


def _reflect(g: float, low: float, high: float) -> float:
    """Bring ``g`` back inside [low, high] by bouncing off the bound it crossed, so values do
    not pile up on a limit (100 %, the target)."""
    if g < low:
        g = low + 0.5 * (low - g)
    elif g > high:
        g = high - 0.5 * (g - high)
    return min(max(g, low), high)


def _money(amount: float) -> Decimal:
    return Decimal(round(amount)).quantize(Decimal("0.01"))


def _finance_paths(
    rng: Random, spec: UnitSpec, periods: list[date]
) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(annual budget, YTD variance, forecast variance) per period; positive = overspend.

    YTD accumulates from April and restarts each April. Every month except the latest stays
    under the 2b thresholds; the latest month has the unit's designed position.
    """
    latest = periods[-1]
    if spec.finance is not None:
        latest_ytd, latest_forecast = spec.finance
    else:
        (ytd_lo, ytd_hi), (fc_lo, fc_hi) = _FINANCE_RANGES[spec.code]
        latest_ytd = round(rng.uniform(ytd_lo, ytd_hi), -1)
        latest_forecast = round(rng.uniform(fc_lo, fc_hi), -2)
    ytd_cap, forecast_cap = YTD_THRESHOLD - 30_000, FORECAST_THRESHOLD - 40_000
    corporate = spec.kind == "corporate_department"
    outturns: dict[int, float] = {}
    rows = []
    for period in periods:
        year = _financial_year(period)
        k = _month_of_year(period)
        budget = spec.annual_budget / (1.03 ** (_financial_year(latest) - year))
        if period == latest:
            ytd, forecast = float(latest_ytd), float(latest_forecast)
        elif year == _financial_year(latest):
            n_fy = _month_of_year(latest)
            share = k / n_fy
            ytd = latest_ytd * share + rng.gauss(0, 0.05 * abs(latest_ytd) + 12_000)
            forecast = latest_forecast + rng.gauss(0, 0.08 * abs(latest_forecast) + 25_000) * (
                1 - share
            )
        else:
            if year not in outturns:
                low, high = (-300_000, 100_000) if corporate else (-250_000, 420_000)
                outturns[year] = rng.uniform(low, high)
            outturn = outturns[year]
            ytd = outturn * k / 12 + rng.gauss(0, 30_000)
            forecast = outturn + rng.gauss(0, 70_000) * (12 - k) / 12
        if period != latest:
            ytd = min(max(ytd, -ytd_cap), ytd_cap)
            forecast = min(max(forecast, -forecast_cap), forecast_cap)
        rows.append((_money(budget), _money(ytd), _money(forecast)))
    return rows


# --- loading ---------------------------------------------------------------------------------


def _email_for(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    parts = [p for p in plain.lower().replace("'", "").split() if p not in {"dr", "professor"}]
    return f"{'.'.join(parts)}@{DEMO_EMAIL_DOMAIN}"


def _at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _recorded_at(period: date) -> datetime:
    """Month-end data arrives around the 10th of the following month (never in the future)."""
    return min(_at(_add_months(period, 1).replace(day=10), 9, 30), utcnow())


def _month_name(period: date) -> str:
    return period.strftime("%B %Y")


def load_demo(
    *, seed: int = DEMO_SEED, months: int = 18, today: date | None = None
) -> list[DemoLogin]:
    """Create the demo health board in the current app's database and flush (no commit).

    :param seed: seeds the one ``random.Random`` every number comes from.
    :param months: how many complete months of data before today's month (at least 12).
    :param today: defaults to today in Europe/London.
    :raises RuntimeError: if anyone is already in the database (the demo needs it empty).
    :returns: the demo log-ins.
    """
    if db.session.scalar(sa.select(sa.func.count(Person.id))):
        raise RuntimeError(
            "The database already has people in it; the demo health board can only be "
            "loaded into an empty database (start from a new database file)."
        )
    if months < MIN_MONTHS:
        raise ValueError(f"The demo needs at least {MIN_MONTHS} months of data, not {months}")
    rng = Random(seed)
    clock_now = utcnow()
    # The demo's present: now, or midday on the given ``today`` (a test's fixed date). The
    # history is lived up to it: what fell due before it is done, what falls due after is open.
    present = (
        clock_now
        if today is None or today == clock_now.astimezone(LONDON).date()
        else datetime.combine(today, time(12, 0), tzinfo=LONDON).astimezone(UTC)
    )
    today = today or today_london()
    periods = _periods(today, months)
    n = len(periods)
    session = db.session

    # Domains (reuse any that exist already).
    domains: dict[str, Domain] = {}
    for code, name in DOMAINS:
        domain = session.scalar(sa.select(Domain).where(Domain.code == code))
        if domain is None:
            domain = Domain(code=code, name=name)
            session.add(domain)
        domains[code] = domain

    # People.
    people: dict[str, Person] = {}

    def person(
        key: str,
        name: str,
        job_title: str,
        roles: list[str],
        email: str = "",
        password: str | None = None,
    ) -> Person:
        someone = Person(
            name=name,
            email=email or _email_for(name),
            job_title=job_title,
            password_hash=hash_password(password) if password else None,
        )
        someone.grants = [RoleGrant(role=role) for role in roles]
        session.add(someone)
        people[key] = someone
        return someone

    for login in demo_logins():
        _name, _local, job_title = _LOGIN_PEOPLE[login.role]
        person(login.role, login.name, job_title, [login.role], login.email, login.password)
    people["ops"] = people[EXECUTIVE_DIRECTOR]
    people["demo_lead"] = people[DIRECTORATE_LEAD]
    for key, (name, title) in _EXECUTIVES.items():
        person(key, name, title, [EXECUTIVE_DIRECTOR])
    for i, (name, title) in enumerate(_ANALYSTS):
        person(f"analyst{i}", name, title, [PERFORMANCE_TEAM])
    for i, (name, title) in enumerate(_COMMITTEE):
        person(f"committee{i}", name, title, [COMMITTEE_MEMBER])
    for key, (name, title) in _STAFF.items():
        person(key, name, title, [DIRECTORATE_LEAD])
    session.flush()

    performance = people[PERFORMANCE_TEAM]
    recorders = [performance, people["analyst0"], people["analyst1"]]

    # Units, measures and monthly data.
    story = _story(n)
    generator = _Generator(rng)
    units: dict[str, Unit] = {}
    for spec in UNITS:
        unit = Unit(
            code=spec.code,
            name=spec.name,
            kind=spec.kind,
            framework=DEMO_FRAMEWORK,
            accountable_executive=people[spec.executive],
            lead=people[spec.lead],
            budget_holder=people[spec.budget_holder],
        )
        session.add(unit)
        units[spec.code] = unit
        session.flush()
        for code in spec.measures:
            m = MEASURES[code]
            scale = spec.annual_budget / 12 if m.scale_with_budget else 1
            target = round(m.target * scale, m.decimals if not m.scale_with_budget else -2)
            tolerance = round(m.tolerance * scale, -2) if m.scale_with_budget else m.tolerance
            measure = Measure(
                unit_id=unit.id,
                domain=domains[m.domain],
                code=code,
                name=m.name,
                kind=m.kind,
                target=Decimal(str(target)),
                direction=m.direction,
                tolerance=Decimal(str(tolerance)),
                unit_of_measure=m.unit_of_measure,
                owner=people[spec.budget_holder if m.owner == "budget_holder" else spec.lead],
            )
            session.add(measure)
            series = generator.series(
                m,
                target,
                tolerance,
                story.regimes.get((spec.code, code), {}),
                story.trajectories.get((spec.code, code), {}),
                periods,
            )
            for i, period in enumerate(periods):
                session.add(
                    TrajectoryValue(
                        measure=measure, period=period, value=_decimal(series.trajectory[i])
                    )
                )
                if series.values[i] is None:
                    continue
                session.add(
                    MonthlyActual(
                        measure=measure,
                        period=period,
                        value=_decimal(series.values[i]),
                        revision=1,
                        recorded_by_id=recorders[i % len(recorders)].id,
                        recorded_at=_recorded_at(period),
                        source="demo",
                    )
                )
        for period, (budget, ytd, forecast) in zip(
            periods, _finance_paths(rng, spec, periods), strict=True
        ):
            session.add(
                FinancePosition(
                    unit_id=unit.id,
                    period=period,
                    budget=budget,
                    ytd_variance=ytd,
                    forecast_variance=forecast,
                    revision=1,
                    recorded_by_id=performance.id,
                    recorded_at=_recorded_at(period),
                )
            )
        open_cases_for_unit(unit)
    session.flush()

    # Every case has been open since the start of the demo window.
    opened = _at(periods[0])
    for case in session.scalars(sa.select(EscalationCase)):
        case.opened_at = opened
        case.level_since = opened
    for change in session.scalars(sa.select(LevelChange).where(LevelChange.from_level.is_(None))):
        change.changed_at = opened

    def month_of_meeting(offset: int) -> date:
        """The 14th of the month ``offset`` months before today's month."""
        return _add_months(today.replace(day=1), -offset).replace(day=14)

    # Concerns (qualitative intelligence, DOMAIN.md decision 6).
    concerns = [
        (
            "MHLD",
            "quality_safety_experience",
            "inspection",
            "serious",
            "HIW unannounced inspection of an adult acute mental health ward: immediate "
            "assurance required on ligature risks and observation practice",
            "HIW immediate assurance letter; ward manager's action log; two outstanding "
            "actions on environmental ligature works.",
            month_of_meeting(8).replace(day=3),
        ),
        (
            "SURG",
            "quality_safety_experience",
            "never_event",
            "high",
            "Never event: retained surgical swab after an emergency laparotomy",
            "Reported as a nationally reportable incident; patient safety incident "
            "investigation commissioned; duty of candour met.",
            month_of_meeting(2).replace(day=11),
        ),
        (
            "UNSCH",
            "quality_safety_experience",
            "complaint_trend",
            "moderate",
            "Rising complaints about emergency department waits and communication",
            "Complaints about the emergency department up from 14 to 31 a month over the "
            "quarter; main themes waiting times, updates to families, pain relief.",
            month_of_meeting(1).replace(day=2),
        ),
        (
            "MED",
            "quality_safety_experience",
            "incident_trend",
            "moderate",
            "Inpatient falls with harm increasing on the medical wards",
            "Falls per 1,000 bed days have risen every month since "
            f"{_month_name(periods[max(n - 8, 0)])}; three falls with moderate harm.",
            month_of_meeting(1).replace(day=5),
        ),
    ]
    for code, domain, kind, severity, summary, detail, occurred_on in concerns:
        session.add(
            Concern(
                unit=units[code],
                domain=domains[domain],
                kind=kind,
                severity=severity,
                summary=summary,
                evidence=detail,
                occurred_on=min(occurred_on, today),
                recorded_by=performance,
                recorded_at=min(_at(min(occurred_on, today), 15, 0), utcnow()),
            )
        )
    session.flush()

    # The lived history: every month's review and its decisions, through the real services.
    history = _live_history(people, periods, present, story)

    record_event(
        "demo.loaded",
        object_type="organisation",
        object_id="demo",
        summary=f"Demo health board loaded (seed {seed})",
        details={
            "seed": seed,
            "months": n,
            "first_period": periods[0].isoformat(),
            "latest_period": periods[-1].isoformat(),
            "units": [spec.code for spec in UNITS],
            "people": len({p.id for p in people.values()}),
            "reviews_replayed": [p.isoformat() for p in history.periods],
            "decisions": len(history.decisions),
        },
    )
    session.flush()
    return demo_logins()


# --- the lived history -------------------------------------------------------------------
#
# Each month after a baseline the demo runs the monthly review at the time the scheduler would
# (08:00 on the framework's ``review_after`` working day after month end), and the Executive
# Team decides its proposals at its meeting the next working day, through the same services a
# person uses (``services.decisions.decide_proposal``, with the demo signer's password): the
# level changes, letters, deadlines, cadence and e-mails are the real consequences, dated
# when they happened. Obligations that fell due before the demo's present were met on time.
# The latest month's review is left to the running app, so its proposals are pending.
# docs/decisions/0014-demo-replays-history.md explains the choices.

# Months of data before the first replayed review: SPC limits and month counts need a baseline.
BASELINE_MONTHS = 6
# Level 3 support options the demo Chief Executive chooses (DOMAIN.md decision 7; seed 000,
# 7.10: "the final decision on support options will rest with the CEO").
SUPPORT_OPTIONS: dict[str, dict[str, dict[str, str]]] = {
    "MHLD": {"independent_review": {}, "ceo_progress_meetings": {"every": "2 weeks"}},
    "SURG": {"ceo_progress_meetings": {"every": "1 week"}},
}
DEFAULT_SUPPORT_OPTIONS: dict[str, dict[str, str]] = {"ceo_progress_meetings": {"every": "2 weeks"}}
# Steps down the Executive Team takes on judgement at the last replayed review (seed 000, 7.2
# and 7.8: de-escalation through delivery of the agreed actions; keep units as low as
# possible), if the measures behind the escalation have met target for DE_ESCALATION_MONTHS.
JUDGEMENT_DE_ESCALATIONS: tuple[tuple[str, str], ...] = (("WACH", "performance"),)
# Units whose escalation the Executive Team declines on judgement while every measure behind
# the proposal is still within tolerance of target (seed 000, 4.3: the Executive Team decides
# whether a deviation is material; 7.9: judgement applies). The latest month's review, left
# to the running app, proposes it again.
JUDGEMENT_HOLDS: frozenset[str] = frozenset({"MED"})
DE_ESCALATION_MONTHS = 3
HISTORY_NOTE = "Demo history: submitted on time"
HISTORY_NOTES = {
    "cadence:ceo_progress_meeting": "Demo history: held on time",
    "support_option:independent_review": "Demo history: reported on time",
}
DECISION_TIME = time(12, 30)  # the Executive Team meets in the morning; signed after it


@dataclass
class DemoHistory:
    """What the replayed history did: the months reviewed and the decisions taken."""

    periods: list[date] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def _meeting_reference(day: date) -> str:
    return f"Executive Team {day.day} {day:%B %Y}"


def _live_history(
    people: dict[str, Person], periods: list[date], present: datetime, story: _Story
) -> DemoHistory:
    """Review each month before the latest and decide its proposals (see above); the units
    write, review and deliver the recovery plans the decisions ask for."""
    from workflow_app.services.deadlines import calendar_for
    from workflow_app.services.review import run_review

    framework = get_framework(DEMO_FRAMEWORK)
    calendar = calendar_for(DEMO_FRAMEWORK)
    after = parse_duration(framework.monthly_returns["review_after"]).amount
    history = DemoHistory()
    replayed = periods[BASELINE_MONTHS:-1]
    agenda = _Agenda(people, periods, story)
    clock: datetime | None = None
    for period in replayed:
        review_day = calendar.month_end_plus_working_days(period.year, period.month, after)
        review_at = calendar.reminder_at(review_day)
        meeting_day = calendar.add_working_days(review_day, 1)
        decided_at = calendar.at_local_time(meeting_day, DECISION_TIME)
        clock = agenda.live_until(clock, review_at)
        with _mail_sent_at(review_at):
            outcome = run_review(period, now=review_at)
        history.periods.append(period)
        clock = agenda.live_until(clock, decided_at)
        meeting = _meeting_reference(meeting_day)
        with _mail_sent_at(decided_at):
            for proposal in outcome.created:
                if proposal.status != "pending":
                    continue  # another decision on its case superseded it
                history.decisions.append(proposal)
                held = _held_on_judgement(proposal)
                if held:
                    _decline(proposal, held, people, decided_at, meeting)
                    continue
                _decide(proposal, people, decided_at, meeting)
                agenda.plan_asked_for(proposal)
            for proposal in _pending_autonomy(period):
                history.decisions.append(proposal)
                _decline(proposal, _autonomy_deferred(proposal), people, decided_at, meeting)
            if period == replayed[-1]:
                for unit_code, track in JUDGEMENT_DE_ESCALATIONS:
                    decision = _judgement_de_escalation(
                        unit_code, track, period, people, meeting_day, decided_at
                    )
                    if decision is not None:
                        history.decisions.append(decision)
    agenda.live_until(clock, present, arrive=True)
    return history


def _pending_autonomy(period: date) -> list[Decision]:
    """The earned-autonomy proposals the review of ``period`` made (services.autonomy)."""
    return list(
        db.session.scalars(
            sa.select(Decision)
            .where(
                Decision.kind == "earned_autonomy",
                Decision.status == "pending",
                Decision.period == period,
            )
            .order_by(Decision.id)
        )
    )


def _autonomy_deferred(proposal: Decision) -> str:
    """Why the Executive Team does not grant earned autonomy in the history: it considers
    it with the unit's six-monthly review (the history does not hold meetings yet, and a
    grant would request base reviews for months already past)."""
    unit = proposal.case.unit
    return (
        f"The Executive Team noted {unit.name}'s consistent delivery (seed 000, 7.8, Level 1: "
        f"consider earned autonomy) and will consider earned autonomy at its six-monthly "
        f"performance review; normal arrangements continue until then."
    )


def _live_until(start: datetime | None, end: datetime, *, arrive: bool = False) -> datetime:
    """Let the history's time pass from ``start`` to ``end``: obligations that fell due were
    met on time, and the cadence was topped up as the daily sweep does (``replan_cadence``;
    only escalated cases have a level cadence in framework A). The top-up plans ``HORIZON``
    occurrences ahead and the shortest cadence is weekly, so a step of ``HORIZON`` weeks
    leaves no occurrence unplanned. ``arrive``: ``end`` is the present, whose e-mails are not
    history."""
    from workflow_app.services.cadence import HORIZON, replan_cadence

    framework = get_framework(DEMO_FRAMEWORK)
    step = timedelta(weeks=HORIZON)
    moments = []
    moment = start
    while moment is not None and moment + step < end:
        moment += step
        moments.append(moment)
    moments.append(end)
    for moment in moments:
        with _mail_sent_at(None if arrive and moment == end else moment):
            _meet_obligations(moment)
            cases = db.session.scalars(sa.select(EscalationCase).order_by(EscalationCase.id))
            for case in cases.all():
                if case.level != framework.initial_level(case.track):
                    replan_cadence(case, now=moment)
    return end


@contextmanager
def _mail_sent_at(at: datetime | None) -> Iterator[None]:
    """E-mails written in the block went out at ``at``: history is not sent again.

    Every message the block writes to the outbox is marked sent at ``at``, so the running
    demo never sends (or holds for a letter PDF) a message about something months old, even
    with a mail server configured. ``None``: the present; its messages stay as written.
    """
    from workflow_app.models.outbox import OutboxMessage

    before = db.session.scalar(sa.select(sa.func.max(OutboxMessage.id))) or 0
    yield
    if at is None:
        return
    db.session.flush()
    for message in db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.id > before)
    ).all():
        message.status = "sent"
        message.attempts = 1
        message.created_at = message.next_attempt_at = message.sent_at = at
    db.session.flush()


def _meet_obligations(moment: datetime) -> None:
    """Mark every open obligation due by ``moment`` done at its due time, by its owner."""
    from workflow_app.models.deadlines import Deadline
    from workflow_app.services.deadlines import mark_done

    due = db.session.scalars(
        sa.select(Deadline)
        .where(Deadline.status == "open", Deadline.due_at <= moment)
        .order_by(Deadline.due_at, Deadline.id)
    ).all()
    for deadline in due:
        if _hold_its_meeting(deadline):
            continue
        note = HISTORY_NOTES.get(deadline.kind, HISTORY_NOTE)
        mark_done(deadline, by=deadline.owner, note=note, at=deadline.due_at)


PROGRESS_MINUTES = (
    "Progress against the recovery plan reviewed with the Chief Executive: actions on "
    "schedule, trajectory reviewed measure by measure."
)
PROGRESS_DECISIONS = "Continue the plan as agreed; next progress meeting as planned."


def _hold_its_meeting(deadline) -> bool:
    """A cadence meeting obligation is met by holding its meeting, as in the running app.

    The meeting is put in the diary two days ahead for the morning of the (working) day it is
    due and its minutes recorded an hour after it starts (``record_outcome`` marks the
    obligation done). Marking the obligation done on its own would leave the meeting to be
    cancelled by the cadence
    ("the obligation was met without this meeting"). False when there is no meeting to hold.
    """
    from workflow_app.models.meetings import Meeting
    from workflow_app.services.meetings import record_outcome, schedule_meeting

    meeting = db.session.scalar(
        sa.select(Meeting).where(Meeting.deadline_id == deadline.id, Meeting.status == "requested")
    )
    if meeting is None or meeting.chair is None:
        return False
    starts_at = deadline.due_at - timedelta(hours=6)  # the morning of the day it is due
    schedule_meeting(
        meeting.chair,
        meeting,
        starts_at,
        location="Chief Executive's office",
        now=starts_at - timedelta(days=2),
    )
    record_outcome(
        meeting.chair,
        meeting,
        PROGRESS_MINUTES,
        PROGRESS_DECISIONS,
        now=starts_at + timedelta(hours=1),
    )
    return True


def _evidence_sentences(decision: Decision) -> str:
    evidence = json.loads(decision.evidence or "{}")
    return ". ".join(s["sentence"] for s in evidence.get("signals", []) if s.get("sentence"))


def _decide(
    proposal: Decision, people: dict[str, Person], decided_at: datetime, meeting: str
) -> None:
    """The Executive Team's decision on a proposal, signed through ``decide_proposal``.

    The demo executive (Director of Operations) signs on behalf of the Executive Team; a move
    to a level with support options (Level 3) is signed by the role that chooses them, the
    Chief Executive, who chooses them; a Chief Executive decision by the Chief Executive.
    """
    from workflow_app.services.decisions import decide_proposal

    framework = get_framework(proposal.case.framework)
    unit = proposal.case.unit
    level = framework.levels[proposal.to_level]
    rule = framework.signatures[proposal.signature_rule]
    chooser = (level.support_options or {}).get("chosen_by") if level.support_options else None
    allowed = set(rule.sequence or rule.any_of)
    if chooser in allowed:
        signer = chooser
    elif EXECUTIVE_DIRECTOR in allowed:
        signer = EXECUTIVE_DIRECTOR
    else:
        signer = CEO
    options = None
    title = framework.level_title(proposal.to_level)
    said = _evidence_sentences(proposal) or proposal.reason
    if chooser == signer:
        options = SUPPORT_OPTIONS.get(unit.code, DEFAULT_SUPPORT_OPTIONS)
        concerns = db.session.scalars(
            sa.select(Concern)
            .where(Concern.unit_id == unit.id, Concern.recorded_at <= decided_at)
            .order_by(Concern.occurred_on)
        ).all()
        noted = "".join(
            f" The Executive Team also noted the concern recorded on "
            f"{c.occurred_on.day} {c.occurred_on:%B %Y}: {c.summary}."
            for c in concerns
        )
        reason = (
            f"{said}. The Executive Team agreed that recovery is failing and that {unit.name} "
            f"moves to {title} (seed 000, 7.8 table).{noted} As Chief Executive I have chosen "
            f"the support options (seed 000, 7.10): {_options_words(options)}."
        )
    elif proposal.kind == "de_escalate":
        reason = (
            f"{said}. The Executive Team agreed the agreed actions are delivered (seed 000, "
            f"7.2): {unit.name} steps down to {title}."
        )
    else:
        transition = framework.transition(
            proposal.case.track, proposal.from_level, proposal.to_level
        )
        spec = framework.consequences_for(transition) if transition else {}
        due = [f"{d['kind'].replace('_', ' ')} in {d['in']}" for d in spec.get("deadlines", [])]
        reason = (
            f"{said}. The Executive Team agreed the deviation is material (seed 000, 4.3): "
            f"{unit.name} moves to {title}"
            + (f", with the {' and '.join(due)}" if due else "")
            + "."
        )
    decide_proposal(
        people[signer],
        proposal,
        outcome="approve",
        reason=reason,
        password=DEMO_PASSWORDS[signer],
        meeting_reference=meeting,
        support_options=options,
        now=decided_at,
    )


def _evidence_measures(decision: Decision) -> list[dict]:
    evidence = json.loads(decision.evidence or "{}")
    return [m for signal in evidence.get("signals", []) for m in signal.get("measures", [])]


def _with_unit(value: float, unit_of_measure: str) -> str:
    return f"{_plain(value)}%" if unit_of_measure == "percent" else _plain(value)


def _held_on_judgement(proposal: Decision) -> str:
    """Why the Executive Team declines ``proposal`` on judgement, or "" if it does not.

    Only for units in ``JUDGEMENT_HOLDS``, only escalations, and only while every measure in
    the proposal's evidence is within its tolerance of target in the month reviewed.
    """
    unit = proposal.case.unit
    if unit.code not in JUDGEMENT_HOLDS or proposal.kind != "escalate":
        return ""
    measures = _evidence_measures(proposal)
    phrases = []
    for m in measures:
        month = next(
            (x for x in m.get("months", []) if x["period"] == f"{proposal.period:%Y-%m}"), None
        )
        if month is None or month.get("actual") is None or m.get("tolerance") is None:
            return ""
        sign = 1 if m["direction"] == "higher_is_better" else -1
        margin = sign * (month["actual"] - m["target"])
        if margin < -m["tolerance"]:
            return ""
        uom = m["unit_of_measure"]
        value = f"{m['name']} was {_with_unit(month['actual'], uom)} in {proposal.period:%B}"
        target = _with_unit(m["target"], uom)
        phrases.append(
            f"{value}, still meeting its target of {target}"
            if margin >= 0
            else f"{value} against a target of {target}, within its tolerance of "
            f"{_with_unit(m['tolerance'], uom)}"
        )
    if not phrases:
        return ""
    names = " and ".join(m["name"] for m in measures)
    return (
        f"The Executive Team judged the deviation not yet material (seed 000, 4.3 and 7.9: "
        f"judgement applies): {'; '.join(phrases)}. {unit.name} is asked for an improvement "
        f"plan on {names} through its directorate performance review; the Executive Team "
        f"will look again at the next monthly review."
    )


def _decline(
    proposal: Decision, reason: str, people: dict[str, Person], decided_at: datetime, meeting: str
) -> None:
    """The Executive Team declines a proposal, signed by the demo executive."""
    from workflow_app.services.decisions import decide_proposal

    decide_proposal(
        people[EXECUTIVE_DIRECTOR],
        proposal,
        outcome="reject",
        reason=reason,
        password=DEMO_PASSWORDS[EXECUTIVE_DIRECTOR],
        meeting_reference=meeting,
        now=decided_at,
    )


def _options_words(options: dict[str, dict[str, str]]) -> str:
    words = []
    for name, spec in options.items():
        text = name.replace("_", " ")
        if spec.get("every"):
            text += f" every {spec['every']}"
        words.append(text)
    return ", ".join(words)


def _judgement_de_escalation(
    unit_code: str,
    track: str,
    period: date,
    people: dict[str, Person],
    meeting_day: date,
    decided_at: datetime,
) -> Decision | None:
    """A step down raised by hand and agreed by the Executive Team on judgement.

    Only if the case is above its lowest level, its recovery plan's actions are all delivered,
    and every measure named in the evidence of the escalation that brought it to its level
    has met target in each of its last ``DE_ESCALATION_MONTHS`` months with data. The plan,
    its work done, is completed by the performance team.
    """
    from workflow_app.services.decisions import decide_proposal, raise_escalation
    from workflow_app.services.plan_delivery import (
        complete_plan,
        current_plan,
        plan_input_for_case,
    )
    from workflow_app.services.review import unit_input

    framework = get_framework(DEMO_FRAMEWORK)
    case = db.session.scalar(
        sa.select(EscalationCase)
        .join(Unit, EscalationCase.unit_id == Unit.id)
        .where(Unit.code == unit_code, EscalationCase.track == track)
    )
    levels = framework.tracks[track].levels
    if case is None or levels.index(case.level) == 0:
        return None
    escalation = db.session.scalar(
        sa.select(Decision)
        .where(
            Decision.case_id == case.id,
            Decision.status == "approved",
            Decision.to_level == case.level,
        )
        .order_by(Decision.decided_at.desc())
        .limit(1)
    )
    if escalation is None:
        return None
    plan = current_plan(case, period)
    plan_input = plan_input_for_case(case, period, plan) if plan is not None else None
    if plan_input is None or not plan_input.actions_delivered:
        return None
    data = unit_input(case.unit, period)
    codes = {m["code"] for m in _evidence_measures(escalation)}
    phrases = []
    for measure in data.measures:
        if measure.code not in codes:
            continue
        sign = 1 if measure.direction == "higher_is_better" else -1
        recent = [p for p in measure.series if p.actual is not None][-DE_ESCALATION_MONTHS:]
        if len(recent) < DE_ESCALATION_MONTHS:
            return None
        if any(sign * (p.actual - measure.target) < 0 for p in recent):
            return None
        uom = measure.unit_of_measure
        values = ", ".join(f"{p.period:%b} {_with_unit(p.actual, uom)}" for p in recent)
        phrases.append(
            f"{measure.name} has met its target of {_with_unit(measure.target, uom)} in each "
            f"of the last {DE_ESCALATION_MONTHS} months ({values})"
        )
    if not phrases:
        return None
    below = levels[levels.index(case.level) - 1]
    title = framework.level_title(below)
    recovered = "; ".join(phrases)
    from workflow_app.services.deadlines import calendar_for

    raised_at = calendar_for(DEMO_FRAMEWORK).at_local_time(meeting_day, time(9, 0))
    proposal = raise_escalation(
        case.unit.accountable_executive,
        case,
        to_level=below,
        reason=(
            f"Step down to {title} on judgement: the recovery plan's agreed actions are "
            f"delivered and {recovered} (seed 000, 7.2 and 7.8)."
        ),
        evidence_note=(
            f"Escalated on the review of {escalation.period:%B %Y}: "
            f"{_evidence_sentences(escalation)}. Since the recovery plan: {recovered}."
        ),
        now=raised_at,
    )
    decide_proposal(
        people[EXECUTIVE_DIRECTOR],
        proposal,
        outcome="approve",
        reason=(
            f"The Executive Team agreed that {case.unit.name} has recovered: {recovered}. "
            f"Stepping down now keeps the unit as low in the framework as possible (seed 000, "
            f"7.8); the monthly review will show any return of the signal."
        ),
        password=DEMO_PASSWORDS[EXECUTIVE_DIRECTOR],
        meeting_reference=_meeting_reference(meeting_day),
        now=decided_at,
    )
    if plan.status == "in_delivery":
        complete_plan(
            people[PERFORMANCE_TEAM],
            plan,
            note=f"Every action delivered; {case.unit.name} stepped down to {title} at "
            f"{_meeting_reference(meeting_day)}.",
            now=decided_at,
        )
    return proposal


# --- recovery plans in the history ----------------------------------------------------------
#
# A decision that asks for a recovery plan (its ``recovery_plan_due`` deadline) is answered by
# the unit's lead through ``services.plans``: the draft is started and saved two working days
# before it is submitted, a few working days before the plan is due; the performance team (the
# accountable executive for a Level 3 plan) approves it before the month is out, so the plan is
# judged from the next month, as the replay assumed before plans were recorded. The plans of
# ``PLANS_RETURNED`` are first returned with a comment on one action and resubmitted. Each month
# after approval every action's owner records its update (``services.plan_delivery``) from the
# month's data, and marks it delivered from its due month while it is not off track.

#: Units whose first plan the performance team returns with a comment on an action.
PLANS_RETURNED: frozenset[str] = frozenset({"WACH"})
PLAN_MONTHS = 6  # months of planned values, from the month after the decision
PLAN_ACTIONS = 3


@dataclass(frozen=True)
class _ActionText:
    description: str
    resources: str
    deliverable: str
    milestones: tuple[str, str]


def _actions(*items: tuple[str, str, str, str, str]) -> tuple[_ActionText, ...]:
    return tuple(_ActionText(d, r, v, (m1, m2)) for d, r, v, m1, m2 in items)


# Two actions a lead would write for each measure the demo's escalations name (SMART: what,
# resources, the deliverable and two milestones; the measure, effect, owner, domain and dates
# come from the data). Any other measure gets the generic pair.
_PLAN_ACTIONS: dict[str, tuple[_ActionText, ...]] = {
    "MHPART1": _actions(
        (
            "Run additional Part 1 assessment clinics on Saturdays across the three "
            "localities, booked from the longest waiters first",
            "Two band 6 practitioners on overtime (about £9,000 a month); clinic rooms agreed "
            "with Primary Care",
            "Weekend assessment clinics in every locality",
            "first weekend clinics running",
            "weekend clinics in all three localities",
        ),
        (
            "Validate the Part 1 waiting list weekly and move suitable referrals to the single "
            "point of access triage",
            "Booking team lead (0.4 WTE); data validation by the information team",
            "A validated waiting list with a weekly triage report",
            "full list validated once",
            "weekly triage report to the directorate meeting",
        ),
    ),
    "CAMHS28": _actions(
        (
            "Commission an external provider for 40 CAMHS assessments a month while two "
            "vacant posts are recruited",
            "Non-recurrent funding of £120,000 agreed with the Director of Finance",
            "An insourced assessment contract in place",
            "contract signed",
            "40 assessments a month delivered",
        ),
        (
            "Recruit to the two vacant CAMHS practitioner posts and offer a retention payment "
            "to the team",
            "Workforce & OD recruitment campaign; retention premium approved",
            "Two posts filled and the team fully established",
            "adverts out and interviews held",
            "both practitioners in post",
        ),
    ),
    "CTP": _actions(
        (
            "Audit every open care and treatment plan monthly and give care coordinators "
            "protected time to complete them",
            "Half a day a week per coordinator; audit by the quality lead",
            "A monthly CTP audit with named actions",
            "first audit reported",
            "every team audited twice",
        ),
    ),
    "RESTR": _actions(
        (
            "Roll out the Safewards model and post-incident debriefs on the two acute wards",
            "Training for 60 staff from the Mental Health Nurse Consultant",
            "Safewards interventions in place on both wards",
            "training delivered on the first ward",
            "debriefs after every incident on both wards",
        ),
    ),
    "RTT18": _actions(
        (
            "Open a fourth theatre list on weekdays and a Saturday list for the longest "
            "waiting orthopaedic and general surgery patients",
            "Theatre staffing from the bank and the insourcing contract (£85,000 a month)",
            "Extra theatre capacity of eight lists a week",
            "Saturday lists running",
            "all eight extra lists running",
        ),
        (
            "Validate the admitted waiting list clinically and administratively and "
            "treat in strict chronological order",
            "Two validation clerks for three months; consultant time for clinical review",
            "A validated waiting list, reported weekly",
            "administrative validation complete",
            "clinical validation of every patient over 40 weeks",
        ),
    ),
    "CANC62": _actions(
        (
            "Put in place a straight-to-test pathway for lower GI and urology referrals, "
            "with a weekly cancer tracking meeting chaired by the General Manager",
            "A cancer pathway navigator (band 5) and diagnostic slots protected by Clinical "
            "Support Services",
            "Straight-to-test pathways for two tumour sites",
            "weekly tracking meeting in place",
            "both pathways live",
        ),
        (
            "Agree mutual aid with the neighbouring health board for robotic prostatectomy "
            "while the second robot is commissioned",
            "Mutual aid agreement; transport for patients",
            "A signed mutual aid agreement",
            "agreement signed",
            "first patients treated under it",
        ),
    ),
    "ED4H": _actions(
        (
            "Open a same day emergency care unit for ambulatory patients seven days a week, "
            "streamed at the front door",
            "Acute physicians' rota extended to weekends; four trolley spaces in the old "
            "discharge lounge",
            "SDEC open seven days a week, 08:00 to 20:00",
            "weekday SDEC extended to 20:00",
            "SDEC open at weekends",
        ),
        (
            "Hold a board round on every ward by 10:00 and move patients to the discharge "
            "lounge by noon",
            "Ward managers and the patient flow team; discharge lounge staffed from 08:00",
            "Morning board rounds and discharges before noon",
            "board rounds on medical wards",
            "board rounds on every ward",
        ),
    ),
    "AMBH": _actions(
        (
            "Open a ten-space ambulance receiving area staffed to take handovers within 15 "
            "minutes, with the ambulance service's liaison officer",
            "Two registered nurses and a healthcare support worker per shift (bank, then "
            "substantive)",
            "An ambulance receiving area open around the clock",
            "area open from 08:00 to 22:00",
            "area open 24 hours",
        ),
    ),
    "ANTE10": _actions(
        (
            "Let women refer themselves to the midwifery service online and by text",
            "Digital team to build the form; community midwives to triage twice a day",
            "Self-referral open online and by text",
            "online form live",
            "text referral live and promoted at GP practices",
        ),
        (
            "Run extra booking clinics in the two towns with the lowest booking rates",
            "Two community midwives for one session a week each",
            "Additional booking clinics in place",
            "clinic venues agreed",
            "clinics running weekly",
        ),
    ),
    "PATH24": _actions(
        (
            "Extend the core laboratory's evening shift to 22:00 and prioritise inpatient "
            "samples by ward",
            "Four biomedical scientists moved to evening shifts; shift allowance funded",
            "An evening shift covering the inpatient peak",
            "rota consulted on",
            "evening shift running every weekday",
        ),
        (
            "Replace the failing analyser in the blood sciences laboratory under the "
            "managed equipment contract",
            "Managed equipment service variation (no capital)",
            "A new analyser commissioned and validated",
            "analyser installed",
            "analyser validated and in use",
        ),
    ),
    "COMM14": _actions(
        (
            "Triage every community referral within two working days and book urgent "
            "patients into ring-fenced slots",
            "Two band 6 nurses to the single point of access; slot templates rebuilt",
            "Triage within two working days and ring-fenced urgent slots",
            "triage standard agreed",
            "ring-fenced slots in every team",
        ),
        (
            "Fill the district nursing vacancies in the north locality through a rolling "
            "advert and an agency bridge",
            "Agency bridge of four nurses for three months, within the agency cap",
            "District nursing establishment filled",
            "agency bridge in place",
            "substantive nurses in post",
        ),
    ),
}
_GENERIC_ACTIONS = _actions(
    (
        "Agree a weekly improvement huddle on {measure} with named actions and an owner for each",
        "Service manager time; weekly data from the information team",
        "A weekly improvement huddle with an action log",
        "huddle in place",
        "action log reviewed at the directorate meeting",
    ),
    (
        "Review capacity and demand for {measure} and redeploy staff to close the gap",
        "Capacity and demand model from the performance team",
        "A capacity and demand plan signed off by the directorate",
        "model built",
        "staff redeployed",
    ),
)


def _actions_for(code: str) -> tuple[_ActionText, ...]:
    return _PLAN_ACTIONS.get(code, _GENERIC_ACTIONS)


class _Agenda:
    """What people do at set times in the history (plans written, reviewed, reported on),
    done in time order as the history's clock passes (``live_until``)."""

    def __init__(self, people: dict[str, Person], periods: list[date], story: _Story) -> None:
        from workflow_app.services.deadlines import calendar_for

        self.people = people
        self.periods = periods
        self.story = story
        self.calendar = calendar_for(DEMO_FRAMEWORK)
        self.items: list[tuple[datetime, int, object]] = []
        self.count = 0

    def add(self, at: datetime, do) -> None:
        heapq.heappush(self.items, (at, self.count, do))
        self.count += 1

    def live_until(
        self, clock: datetime | None, end: datetime, *, arrive: bool = False
    ) -> datetime:
        """Let time pass to ``end``, doing what falls due on the way at its time."""
        while self.items and self.items[0][0] <= end:
            at, _n, do = heapq.heappop(self.items)
            if clock is None or at > clock:
                clock = _live_until(clock, at)
            with _mail_sent_at(at):
                do(at)
        return _live_until(clock, end, arrive=arrive)

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return self.calendar.at_local_time(day, time(hour, minute))

    # -- a decision asks for a plan -----------------------------------------------------------

    def plan_asked_for(self, decision: Decision) -> None:
        """Plan the writing and review of the plan ``decision`` asks for, if it asks for one."""
        from workflow_app.models.deadlines import Deadline
        from workflow_app.services.plans import PLAN_DUE_KINDS, open_plan_for_case, withdraw

        due = db.session.scalar(
            sa.select(Deadline).where(
                Deadline.dedupe_key.like(f"decision:{decision.id}:%"),
                Deadline.kind.in_(tuple(PLAN_DUE_KINDS)),
            )
        )
        if due is None:
            return
        case = decision.case
        framework = get_framework(case.framework)
        old = open_plan_for_case(case)
        if old is not None:  # the new level asks for a new plan: the old one is replaced
            withdraw(
                self.people[PERFORMANCE_TEAM],
                old,
                f"Replaced by the plan asked for at {decision.meeting_reference}, when "
                f"{case.unit.name} moved to {framework.level_title(case.level)}.",
                now=decision.decided_at,
            )
        calendar = self.calendar
        decided = calendar.local_date(decision.decided_at)
        due_day = calendar.local_date(due.due_at)
        month_end = calendar.previous_working_day(_add_months(decided.replace(day=1), 1))
        if case.unit.code in PLANS_RETURNED:
            submit_day = calendar.add_working_days(due_day, -4)
            steps = [
                (self.at(calendar.add_working_days(submit_day, -2), 10), "draft"),
                (self.at(submit_day, 16), "submit"),
                (self.at(calendar.add_working_days(submit_day, 2), 11), "return"),
                (self.at(calendar.add_working_days(submit_day, 6), 15), "resubmit"),
                (self.at(calendar.add_working_days(submit_day, 8), 14), "approve"),
            ]
        else:
            approve_day = min(calendar.add_working_days(due_day, -1), month_end)
            submit_day = max(
                calendar.add_working_days(approve_day, -3), calendar.add_working_days(decided, 2)
            )
            approve_day = max(approve_day, calendar.add_working_days(submit_day, 1))
            steps = [
                (self.at(calendar.add_working_days(submit_day, -2), 10), "draft"),
                (self.at(submit_day, 16), "submit"),
                (self.at(approve_day, 14), "approve"),
            ]
        state: dict[str, object] = {"decision_id": decision.id}
        for when, step in steps:
            self.add(when, lambda at, step=step: self._plan_step(state, step, at))

    def _plan_step(self, state: dict, step: str, at: datetime) -> None:
        from workflow_app.services import plans as service

        decision = db.session.get(Decision, state["decision_id"])
        case = decision.case
        unit = case.unit
        lead = unit.lead
        performance = self.people[PERFORMANCE_TEAM]
        if step == "draft":
            plan = service.start_plan(lead, case, now=at)
            state["plan_id"] = plan.id
            service.save_draft(
                lead, plan, self._plan_content(plan, decision), plan.lock_version, now=at
            )
            return
        plan = db.session.get(service.RecoveryPlan, state["plan_id"])
        if step == "submit":
            service.submit(lead, plan, now=at)
        elif step == "return":
            action = plan.actions[-1]
            service.return_for_changes(
                performance,
                plan,
                "A good plan; one action needs to be more specific before it can be approved.",
                {
                    action.id: "Say how many extra sessions a week, in which towns and from "
                    "which month, and how many more bookings by 10 weeks you expect from them."
                },
                now=at,
            )
        elif step == "resubmit":
            data = service.plan_data(plan)
            last = data["actions"][-1]
            last["description"] = (
                last["description"].rstrip(".")
                + ": one extra session a week in each of the two towns from the first of "
                "next month, held in the family centres"
            )
            last["expected_effect"] += " (about 12 more women a month booked by 10 weeks)"
            service.save_draft(lead, plan, data, plan.lock_version, now=at)
            service.submit(lead, plan, now=at)
        elif step == "approve":
            level_3 = case.level == "3"
            reviewer = unit.accountable_executive if level_3 else performance
            note = (
                "Approved: the actions are specific and owned, and the trajectory is "
                "realistic. Progress to the Executive Committee monthly."
            )
            service.approve(reviewer, plan, note, now=at)
            first = _add_months(self.calendar.local_date(at).replace(day=1), 1)
            for month in self.periods:
                if month >= first:
                    day = self.calendar.previous_working_day(_add_months(month, 1))
                    self.add(
                        self.at(day, 10),
                        lambda at, month=month: self._report(state["plan_id"], month, at),
                    )

    # -- the plan's content ---------------------------------------------------------------------

    def _plan_content(self, plan, decision: Decision) -> dict:
        """Summary, risk, support, up to three SMART actions on the measures behind the
        decision, and a trajectory stepping from their value then towards target."""
        from workflow_app.models.measures import Measure

        unit = plan.unit
        framework = get_framework(plan.case.framework)
        codes = {m["code"] for m in _evidence_measures(decision)}
        measures = sorted(
            db.session.scalars(
                sa.select(Measure).where(Measure.unit_id == unit.id, Measure.code.in_(codes))
            ).all(),
            key=lambda m: (m.kind != _KD, m.code),
        )
        decided = self.calendar.local_date(decision.decided_at)
        first = _add_months(decided.replace(day=1), 1)
        months = [_add_months(first, k) for k in range(PLAN_MONTHS)]
        level_3 = plan.case.level == "3"
        picks: list[tuple[Measure, _ActionText]] = []
        for measure in measures:
            picks.append((measure, _actions_for(measure.code)[0]))
        for measure in measures:
            for text in _actions_for(measure.code)[1:]:
                picks.append((measure, text))
        picks = picks[: max(2, min(PLAN_ACTIONS, len(picks)))]
        owners = [unit.lead, unit.budget_holder, unit.accountable_executive]
        trajectory = []
        paths: dict[int, list[float]] = {}
        for measure in measures:
            path = self._path(unit.code, measure, decision.period, months)
            paths[measure.id] = path
            trajectory += [
                {"measure_id": measure.id, "period": month, "planned_value": _decimal(value)}
                for month, value in zip(months, path, strict=True)
            ]
        actions = []
        for i, (measure, text) in enumerate(picks):
            path = paths[measure.id]
            now_value = self._actual(measure, decision.period)
            uom = measure.unit_of_measure
            due_month = _add_months(first, 1 + i)
            due_on = self.calendar.previous_working_day(_add_months(due_month, 1))
            actions.append(
                {
                    "id": None,
                    "description": text.description.format(measure=measure.name.lower()),
                    "measure_id": measure.id,
                    "expected_effect": (
                        f"{measure.name} from {_with_unit(now_value, uom)} in "
                        f"{decision.period:%B} to {_with_unit(path[2], uom)} by "
                        f"{months[2]:%B %Y} and {_with_unit(path[-1], uom)} by "
                        f"{months[-1]:%B %Y} (target {_with_unit(float(measure.target), uom)})"
                    ),
                    "owner_id": owners[i % len(owners)].id,
                    "resources": text.resources,
                    "domain_id": measure.domain_id,
                    "deliverable": text.deliverable,
                    "due_on": due_on,
                    "milestones": (
                        f"{_add_months(first, i):%B %Y}: {text.milestones[0]}\n"
                        f"{due_month:%B %Y}: {text.milestones[1]}"
                    ),
                }
            )
        names = " and ".join(m.name for m in measures)
        said = _evidence_sentences(decision) or decision.reason
        return {
            "summary": (
                f"{unit.name} moved to {framework.level_title(plan.case.level)} at "
                f"{decision.meeting_reference}: {said}. This plan sets out how {names} "
                f"will recover, month by month, over the next {PLAN_MONTHS} months, with an "
                "owner, resources and a due date for each action."
            ),
            "risk_assessment": (
                f"While {names} stay below target, patients may wait longer or be cared "
                "for later than the standard, with a risk of harm from delay. Mitigations: "
                "clinical validation of the longest waits, harm reviews for breaches, and "
                "escalation through the directorate's weekly performance meeting. The risk "
                "is on the directorate risk register."
            ),
            "risk_level": "high" if level_3 else "moderate",
            "support_requested": (
                "Chief Executive progress meetings as agreed; support from Workforce & OD for "
                "recruitment; non-recurrent funding as set out in the actions."
                if level_3
                else "Help from the performance team with weekly data, and Workforce & OD "
                "with recruitment."
            ),
            "headlines": "",
            "narrative": "",
            "queries": "",
            "actions": actions,
            "trajectory": trajectory,
        }

    def _actual(self, measure, period: date) -> float:
        """The measure's value in ``period`` (or the latest month before it with data)."""
        value = db.session.scalar(
            sa.select(MonthlyActual.value)
            .where(MonthlyActual.measure_id == measure.id, MonthlyActual.period <= period)
            .order_by(MonthlyActual.period.desc(), MonthlyActual.revision.desc())
            .limit(1)
        )
        return float(value)

    def _path(self, unit_code: str, measure, period: date, months: list[date]) -> list[float]:
        """Planned values for ``months``: from the value in ``period`` to target over the
        plan's months, except where the story designed the measure's recovery trajectory
        (a run of designed months starting within the plan), and never better before such a
        run than the run's start."""
        spec = MEASURES[measure.code]
        target, tolerance = float(measure.target), float(measure.tolerance)
        sign = spec.sign
        g0 = sign * (self._actual(measure, period) - target) / tolerance
        designed = self.story.trajectories.get((unit_code, measure.code), {})
        index = {p: i for i, p in enumerate(self.periods)}
        # Runs of designed values: a run starts where the value falls back.
        runs: dict[int, float] = {}
        previous = None
        run_start = None
        for i in sorted(designed):
            if previous is None or i != previous + 1 or designed[i] < designed[previous]:
                run_start = i
            if run_start is not None and run_start >= index.get(months[0], len(self.periods)):
                runs[i] = designed[i]
            previous = i
        steps = len(months)
        out: list[float | None] = []
        anchor_k, anchor_g = -1, g0
        for k, month in enumerate(months):
            i = index.get(month)
            if i is not None and i in runs:
                out.append(runs[i])
                anchor_k, anchor_g = k, runs[i]
            else:
                remaining = steps - 1 - anchor_k
                out.append(anchor_g + (0 - anchor_g) * (k - anchor_k) / max(remaining, 1))
        cap = None
        for k in range(steps - 1, -1, -1):
            i = index.get(months[k])
            if i is not None and i in runs:
                cap = runs[i]
            elif cap is not None and k < min(
                (kk for kk in range(steps) if index.get(months[kk]) in runs), default=steps
            ):
                out[k] = min(out[k], cap)
        values = []
        for g in out:
            value = round(target + sign * g * tolerance, spec.decimals)
            value = max(value, spec.lower_bound)
            if spec.maximum is not None:
                value = min(value, spec.maximum)
            values.append(value)
        return values

    # -- monthly updates ------------------------------------------------------------------------

    def _report(self, plan_id: int, month: date, at: datetime) -> None:
        """Each action's owner reports on the month from the month's data."""
        from workflow_app.models.plans import RecoveryPlan
        from workflow_app.services.plan_delivery import (
            UPDATABLE_STATUSES,
            ActionEntry,
            record_updates,
        )

        plan = db.session.get(RecoveryPlan, plan_id)
        if plan.status not in UPDATABLE_STATUSES:
            return
        planned = {(p.measure_id, p.period): float(p.planned_value) for p in plan.trajectory}
        by_owner: dict[int, dict[int, ActionEntry]] = {}
        for action in plan.actions:
            measure = action.measure
            spec = MEASURES[measure.code]
            actual = db.session.scalar(
                sa.select(MonthlyActual.value)
                .where(MonthlyActual.measure_id == measure.id, MonthlyActual.period == month)
                .order_by(MonthlyActual.revision.desc())
                .limit(1)
            )
            bar = planned.get((measure.id, month), float(measure.target))
            uom = measure.unit_of_measure
            if actual is None:
                status = "at_risk"
                words = (
                    f"No validated {measure.name} figure for {month:%B} yet; the action is "
                    "progressing but its effect cannot be shown this month."
                )
            else:
                g = spec.sign * (float(actual) - bar) / float(measure.tolerance)
                position = (
                    f"{measure.name} was {_with_unit(float(actual), uom)} in {month:%B} "
                    f"against the plan's {_with_unit(bar, uom)}"
                )
                if g >= 0:
                    status = "on_track"
                    words = f"{position}: on track. {action.deliverable} progressing as planned."
                elif g >= -0.5:
                    status = "at_risk"
                    words = (
                        f"{position}: slightly behind. Extra sessions booked to recover the "
                        "gap next month; the directorate reviews progress weekly."
                    )
                else:
                    status = "off_track"
                    words = (
                        f"{position}: off track. Demand is above plan and staffing gaps "
                        "remain; a recovery action is going to the Executive Committee and "
                        "support has been asked for."
                    )
            deliver = (
                action.delivered_on is None
                and action.due_on is not None
                and action.due_on <= _add_months(month, 1) - timedelta(days=1)
                and status != "off_track"
            )
            if deliver:
                words = f"Delivered: {action.deliverable.lower()}. " + words
            owner = action.owner_id or plan.unit.lead_id
            by_owner.setdefault(owner, {})[action.id] = ActionEntry(
                status, words, True if deliver else None
            )
        for owner_id, entries in by_owner.items():
            record_updates(db.session.get(Person, owner_id), plan, month, entries, now=at)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.0001"))


def _plain(number: float) -> str:
    return f"{number:g}" if abs(number) < 1e6 else f"{number:,.0f}"
