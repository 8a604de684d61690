"""Test profiles: CI runs a bounded, seeded profile of the reliability checks; the full
profile (the loop sizes of RELIABILITY-ANCHORS section 7) runs with ``ESCALATE_TEST_PROFILE=full``.

The full profile, documented in the README::

    ESCALATE_TEST_PROFILE=full HYPOTHESIS_PROFILE=full \
        .venv/bin/pytest tests/reliability tests/security
"""

from __future__ import annotations

import os


def full_profile() -> bool:
    """True when the full (slow) profile was asked for."""
    return os.environ.get("ESCALATE_TEST_PROFILE", "ci").lower() == "full"


def scaled(ci: int, full: int) -> int:
    """A loop size: ``ci`` in the bounded CI profile, ``full`` in the full profile."""
    return full if full_profile() else ci


#: Seed for the random delays and choices of the fault tests, so a CI failure replays.
SEED = int(os.environ.get("ESCALATE_TEST_SEED", "20261127"))
