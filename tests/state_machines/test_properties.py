"""Property tests: random sequences of requested levels never break the framework's rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from state_machines import IllegalTransition, apply_transition, get_framework

CASES = [
    ("iqpf", "performance"),
    ("iqpf", "finance"),
    ("nhs_wales", "quality"),
    ("nhs_wales", "delivery"),
    ("system_tiers", "measure:RTT18"),
]


def requests_for(name: str) -> st.SearchStrategy[list[str]]:
    """Requested levels: any declared level of the framework, plus some that do not exist."""
    framework = get_framework(name)
    return st.lists(
        st.sampled_from([*framework.levels, "0", "6", "2c", "bogus"]), min_size=1, max_size=40
    )


@pytest.mark.parametrize(("name", "track_key"), CASES)
@given(data=st.data())
def test_random_requests_respect_the_framework(name, track_key, data):
    framework = get_framework(name)
    track = framework.track_for(track_key)
    requests = data.draw(requests_for(name), label="requested levels")
    level = framework.initial_level(track_key)
    for requested in requests:
        before = level
        try:
            level = apply_transition(framework, track_key, level, requested)
        except IllegalTransition:
            # a refused step leaves the level unchanged and was not declared
            assert level == before
            assert framework.transition(track_key, before, requested) is None
            continue
        # an accepted step lands exactly on the requested, declared level of the track
        assert level == requested
        assert level in track.levels
        assert framework.transition(track_key, before, level) is not None
        # never more than one level down at a time
        assert framework.deescalation_max_steps == 1
        assert track.index(before) - track.index(level) <= 1


@pytest.mark.parametrize(("name", "track_key"), CASES)
@given(data=st.data())
def test_every_level_is_reachable_by_some_sequence(name, track_key, data):
    """Walking only through allowed moves, every step is accepted (no false refusals)."""
    from state_machines import allowed_transitions

    framework = get_framework(name)
    level = framework.initial_level(track_key)
    for _ in range(data.draw(st.integers(min_value=1, max_value=30), label="steps")):
        moves = allowed_transitions(framework, track_key, level)
        assert moves, f"dead end at {level}"
        move = data.draw(st.sampled_from(moves), label="move")
        level = apply_transition(framework, track_key, level, move.to_level)
        assert level == move.to_level
