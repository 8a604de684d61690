"""Hypothesis profiles for the evaluation property tests.

``HYPOTHESIS_PROFILE=ci`` (default) runs 100 examples per property; ``full`` runs 2000. The
profiles have the same names as tests/state_machines/conftest.py; registration is guarded so
that running both folders in one session does not register them twice.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_PROFILES = {"ci": 100, "full": 2000}

for _name, _examples in _PROFILES.items():
    try:
        settings.get_profile(_name)
    except Exception:  # not registered yet (hypothesis raises InvalidArgument)
        settings.register_profile(
            _name,
            max_examples=_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
