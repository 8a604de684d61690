"""Escalate's pure-Python lifecycles: framework files, the escalation machine, diagrams.

Nothing here imports Flask or SQLAlchemy (DESIGN.md principle 1); the service layer loads a
case, asks this package whether a move is allowed, applies it and stores the result.
"""

from __future__ import annotations

from .diagrams import DiagramUnavailable, mermaid_diagram, svg_diagram
from .escalation import IllegalTransition, allowed_transitions, apply_transition, machine_for
from .framework import (
    BUILTIN_ROLES,
    Duration,
    Framework,
    FrameworkError,
    FrameworkInvalid,
    Level,
    SignatureRule,
    Track,
    Transition,
    available_frameworks,
    get_framework,
    load_framework,
    parse_duration,
    validate_framework_data,
)

__all__ = [
    "BUILTIN_ROLES",
    "DiagramUnavailable",
    "Duration",
    "Framework",
    "FrameworkError",
    "FrameworkInvalid",
    "IllegalTransition",
    "Level",
    "SignatureRule",
    "Track",
    "Transition",
    "allowed_transitions",
    "apply_transition",
    "available_frameworks",
    "get_framework",
    "load_framework",
    "machine_for",
    "mermaid_diagram",
    "parse_duration",
    "svg_diagram",
    "validate_framework_data",
]
