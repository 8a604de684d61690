"""Escalate's pure evaluation engine (no Flask, no SQLAlchemy).

The service layer loads a unit into :class:`UnitInput`, calls :func:`evaluate_unit` with the
unit's framework, and stores the returned :class:`ProposalDraft` objects as pending
decisions. See :mod:`.rules` for the rules and :mod:`.triggers` for the signal table.
"""

from __future__ import annotations

from .model import (
    KEY_DELIVERABLE_KINDS,
    SEVERITY_ORDER,
    AmberRule,
    ConcernInput,
    Direction,
    FinancePoint,
    FinanceSignal,
    Forecast,
    ForecastPoint,
    MeasureEvaluation,
    MeasureInput,
    MonthCount,
    MonthPoint,
    PlanInput,
    ProposalDraft,
    Rag,
    SpcResult,
    SpcSignal,
    UnitEvaluation,
    UnitInput,
)
from .rules import (
    DEFAULT_AMBER_RULE,
    MonthCountRules,
    SpcRules,
    data_quality_warnings,
    finance_signals,
    forecast,
    improvement_since,
    meets_target,
    meets_trajectory,
    month_count,
    rag,
    spc,
    within_tolerance,
)
from .triggers import DOMAIN_ALIASES, SIGNALS, evaluate_unit, fingerprint

__all__ = [
    "DEFAULT_AMBER_RULE",
    "DOMAIN_ALIASES",
    "KEY_DELIVERABLE_KINDS",
    "SEVERITY_ORDER",
    "SIGNALS",
    "AmberRule",
    "ConcernInput",
    "Direction",
    "FinancePoint",
    "FinanceSignal",
    "Forecast",
    "ForecastPoint",
    "MeasureEvaluation",
    "MeasureInput",
    "MonthCount",
    "MonthCountRules",
    "MonthPoint",
    "PlanInput",
    "ProposalDraft",
    "Rag",
    "SpcResult",
    "SpcRules",
    "SpcSignal",
    "UnitEvaluation",
    "UnitInput",
    "data_quality_warnings",
    "evaluate_unit",
    "finance_signals",
    "fingerprint",
    "forecast",
    "improvement_since",
    "meets_target",
    "meets_trajectory",
    "month_count",
    "rag",
    "spc",
    "within_tolerance",
]
