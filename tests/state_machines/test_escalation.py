"""The escalation machine: every allowed and every forbidden move of each bundled framework."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from state_machines import (
    IllegalTransition,
    allowed_transitions,
    apply_transition,
    get_framework,
    load_framework,
    machine_for,
)
from state_machines.escalation import _MACHINES

FIXTURES = Path(__file__).parent / "fixtures"
TRACK_KEYS = {
    "iqpf": ["performance", "finance"],
    "nhs_wales": ["quality", "workforce", "finance", "delivery", "leadership"],
    "system_tiers": ["measure:RTT18"],
}


def all_pairs():
    for name, keys in TRACK_KEYS.items():
        framework = get_framework(name)
        for key in keys:
            levels = framework.track_for(key).levels
            for from_level, to_level in itertools.product(levels, levels):
                yield pytest.param(
                    name, key, from_level, to_level, id=f"{name}-{key}-{from_level}-{to_level}"
                )


@pytest.mark.parametrize(("name", "track", "from_level", "to_level"), list(all_pairs()))
def test_allowed_iff_declared(name, track, from_level, to_level):
    framework = get_framework(name)
    declared = framework.transition(track, from_level, to_level)
    allowed = {t.to_level for t in allowed_transitions(framework, track, from_level)}
    if declared is not None:
        assert to_level in allowed
        assert apply_transition(framework, track, from_level, to_level) == to_level
    else:
        assert to_level not in allowed
        with pytest.raises(IllegalTransition) as info:
            apply_transition(framework, track, from_level, to_level)
        message = str(info.value)
        assert f'"{from_level}"' in message
        assert f'"{to_level}"' in message
        assert framework.title in message
        assert info.value.framework == name
        assert (info.value.track, info.value.from_level, info.value.to_level) == (
            track,
            from_level,
            to_level,
        )


@pytest.mark.parametrize("name", list(TRACK_KEYS))
def test_allowed_transitions_agree_with_declared_transitions(name):
    framework = get_framework(name)
    for key in TRACK_KEYS[name]:
        track = framework.track_for(key)
        for level in track.levels:
            from_machine = allowed_transitions(framework, key, level)
            declared = [
                t for t in framework.transitions if t.track == track.name and t.from_level == level
            ]
            assert set(from_machine) == set(declared)
            # ordered by target level, low to high
            order = [track.index(t.to_level) for t in from_machine]
            assert order == sorted(order)


def test_iqpf_examples():
    f = get_framework("iqpf")
    assert [t.to_level for t in allowed_transitions(f, "performance", "1")] == ["2a", "3"]
    assert [t.to_level for t in allowed_transitions(f, "finance", "3")] == ["2b"]
    assert [t.to_level for t in allowed_transitions(f, "performance", "3")] == ["2a"]
    assert apply_transition(f, "finance", "3", "2b") == "2b"
    with pytest.raises(IllegalTransition, match='cannot move from level "3"'):
        apply_transition(f, "performance", "3", "1")  # one level down at a time


def test_nhs_wales_jumps_up_but_steps_down_one_level():
    f = get_framework("nhs_wales")
    assert apply_transition(f, "finance", "1", "5") == "5"
    assert [t.to_level for t in allowed_transitions(f, "finance", "5")] == ["4"]
    assert [t.to_level for t in allowed_transitions(f, "finance", "1")] == ["2", "3", "4", "5"]


def test_per_measure_track_keys_share_the_template_machine():
    f = get_framework("system_tiers")
    assert machine_for(f, "measure:RTT18") is machine_for(f, "measure:CANCER62")
    assert machine_for(f, "measure:RTT18") is machine_for(f, "measure")
    assert apply_transition(f, "measure:CANCER62", "improvement_plan", "first_level") == (
        "first_level"
    )


def test_machine_is_built_once_per_framework_track():
    f = get_framework("iqpf")
    m = machine_for(f, "performance")
    apply_transition(f, "performance", "1", "2a")
    assert machine_for(f, "performance") is m
    assert machine_for(f, "finance") is not m
    assert m.initial is None
    assert not any(name.startswith("to_") for name in m.events)  # auto_transitions=False
    assert m.models == []


def test_machines_are_keyed_by_content_not_name(tmp_path):
    """An edited copy of a framework (same name) never reuses the original's machine."""
    first = load_framework(FIXTURES / "valid_minimal.yaml")
    data = yaml.safe_load((FIXTURES / "valid_minimal.yaml").read_text())
    data["transitions"].append(
        {"track": "performance", "from": "1", "to": "3", "signed_by": "executive_team"}
    )
    edited = tmp_path / "mini.yaml"
    edited.write_text(yaml.safe_dump(data))
    second = load_framework(edited)
    assert second.name == first.name
    with pytest.raises(IllegalTransition):
        apply_transition(first, "performance", "1", "3")
    assert apply_transition(second, "performance", "1", "3") == "3"
    assert machine_for(first, "performance") is not machine_for(second, "performance")


@pytest.mark.parametrize(
    ("level", "to_level", "fragment"),
    [
        ("9", "2a", 'current level "9" is not a level of this track'),
        ("1", "2b", 'requested level "2b" is not a level of this track'),
        ("2a", "2a", "already at that level"),
    ],
)
def test_illegal_requests_have_clear_messages(level, to_level, fragment):
    with pytest.raises(IllegalTransition, match=fragment):
        apply_transition(get_framework("iqpf"), "performance", level, to_level)


def test_illegal_transition_is_a_value_error():
    assert issubclass(IllegalTransition, ValueError)


def test_unknown_track_is_a_key_error():
    with pytest.raises(KeyError):
        apply_transition(get_framework("iqpf"), "budget", "1", "2a")
    with pytest.raises(KeyError):
        allowed_transitions(get_framework("iqpf"), "budget", "1")


def test_allowed_transitions_unknown_level():
    with pytest.raises(ValueError, match='"2b" is not a level'):
        allowed_transitions(get_framework("iqpf"), "performance", "2b")


def test_caller_objects_never_reach_the_machine():
    f = get_framework("iqpf")
    apply_transition(f, "performance", "1", "2a")
    with pytest.raises(IllegalTransition):
        apply_transition(f, "performance", "1", "1")
    for entry in _MACHINES.values():
        assert entry.machine.models == []


def test_concurrent_apply_transition():
    """Request threads and the scheduler thread share one machine per track."""
    frameworks = [get_framework(n) for n in TRACK_KEYS]
    jobs = []
    for framework in frameworks:
        for key in TRACK_KEYS[framework.name]:
            levels = framework.track_for(key).levels
            for a, b in itertools.product(levels, levels):
                jobs.append((framework, key, a, b, framework.transition(key, a, b) is not None))
    jobs = jobs * 20
    start = threading.Barrier(8)

    def run(job):
        framework, key, a, b, expected = job
        try:
            return apply_transition(framework, key, a, b) == b and expected
        except IllegalTransition:
            return not expected

    def worker(chunk):
        start.wait()
        return all(run(job) for job in chunk)

    chunks = [jobs[i::8] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, chunks))
    assert all(results)
    for framework in frameworks:
        for key in TRACK_KEYS[framework.name]:
            assert machine_for(framework, key).models == []
