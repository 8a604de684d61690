"""The escalation-case machine, built from a framework with ``transitions``.

One shared :class:`transitions.Machine` per (framework, track template), created once and
cached (DESIGN.md principle 1; STYLE-ANCHORS.md section 6): ``model=None``, ``initial=None``
(every model is added with its own level), ``auto_transitions=False`` (no ``to_<state>``
back doors) and ``send_event=False``. States are the track's levels; events are the declared
transitions, one event per (from, to) named ``move_<from>_to_<to>``.

:func:`apply_transition` never hands a caller's object to the machine: it adds a throwaway
adapter holding only the level (``add_model(adapter, initial=level)``), fires the event and
removes the adapter in ``finally``, which sidesteps the pitfalls of ``add_model`` resetting the
state column, strong references kept in ``machine.models`` and trigger-name collisions with
model attributes. ``transitions`` does not promise that a plain ``Machine`` is safe under
concurrent ``add_model``/``remove_model`` (pytransitions issues #225, #388), so each machine's
add -> trigger -> remove sequence runs under its own lock; it takes microseconds.

The machine is the single source of truth: :func:`allowed_transitions` reads the events the
machine has for a state, and :func:`apply_transition` only succeeds if the machine fires.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from transitions import Machine, MachineError

from .framework import Framework, Track, Transition

__all__ = ["IllegalTransition", "allowed_transitions", "apply_transition", "machine_for"]


class IllegalTransition(ValueError):
    """A move the framework does not allow; the message is written for the person who asked."""

    def __init__(
        self,
        framework: Framework,
        track: str,
        from_level: str,
        to_level: str,
        detail: str | None = None,
    ) -> None:
        self.framework = framework.name
        self.track = track
        self.from_level = from_level
        self.to_level = to_level
        if detail is None:
            detail = _allowed_hint(framework, track, from_level)
        message = (
            f"{framework.title}: a case on the {track!r} track cannot move from level "
            f"{_describe_level(framework, from_level)} to level "
            f"{_describe_level(framework, to_level)}. {detail}"
        ).strip()
        super().__init__(message)


def _describe_level(framework: Framework, level: str) -> str:
    found = framework.levels.get(level)
    if found is None or found.title.lower() in (level.lower(), f"level {level.lower()}"):
        return f'"{level}"'
    return f'"{level}" ({found.title})'


def _allowed_hint(framework: Framework, track: str, from_level: str) -> str:
    try:
        moves = allowed_transitions(framework, track, from_level)
    except (KeyError, ValueError):
        return ""
    if not moves:
        return f'No move is allowed from level "{from_level}".'
    targets = ", ".join(f'"{t.to_level}"' for t in moves)
    return f'From level "{from_level}" the framework allows moves to: {targets}.'


@dataclass
class _MachineEntry:
    machine: Machine
    lock: threading.Lock
    by_trigger: dict[str, Transition]
    trigger_for: dict[tuple[str, str], str]


class _CaseAdapter:
    """Throwaway model: holds only the level while one event runs."""

    def __init__(self, level: str) -> None:
        self.level = level


_MACHINES: dict[tuple[object, ...], _MachineEntry] = {}
_MACHINES_LOCK = threading.Lock()


def _entry(framework: Framework, track: Track) -> _MachineEntry:
    track_transitions = tuple(t for t in framework.transitions if t.track == track.name)
    # Keyed by content, not just by name, so a test's or a CLI user's edited copy of a
    # framework never reuses a machine built from a different file.
    key = (framework.name, track.name, track.levels, track_transitions)
    entry = _MACHINES.get(key)
    if entry is not None:
        return entry
    with _MACHINES_LOCK:
        entry = _MACHINES.get(key)
        if entry is None:
            entry = _build(track, track_transitions)
            _MACHINES[key] = entry
    return entry


def _build(track: Track, track_transitions: tuple[Transition, ...]) -> _MachineEntry:
    machine = Machine(
        model=None,
        states=list(track.levels),
        initial=None,
        transitions=[
            {"trigger": t.trigger, "source": t.from_level, "dest": t.to_level}
            for t in track_transitions
        ],
        auto_transitions=False,
        send_event=False,
        model_attribute="level",
        queued=False,
    )
    by_trigger = {t.trigger: t for t in track_transitions}
    # Read (from, to) -> trigger back from the machine itself: it is the source of truth.
    trigger_for: dict[tuple[str, str], str] = {}
    for name, event in machine.events.items():
        for source, moves in event.transitions.items():
            for move in moves:
                trigger_for[(source, move.dest)] = name
    return _MachineEntry(machine, threading.Lock(), by_trigger, trigger_for)


def machine_for(framework: Framework, track_key: str) -> Machine:
    """The shared machine for a track (for inspection; do not add models to it yourself).

    :raises KeyError: if the framework has no such track.
    """
    return _entry(framework, framework.track_for(track_key)).machine


def allowed_transitions(framework: Framework, track: str, level: str) -> list[Transition]:
    """The moves the framework allows from ``level`` on a track, lowest target first.

    :param framework: a loaded framework.
    :param track: a track key (``"performance"``, ``"measure:RTT18"`` ...).
    :param level: the case's current level.
    :raises KeyError: if the framework has no such track.
    :raises ValueError: if ``level`` is not a level of that track.
    """
    track_obj = framework.track_for(track)
    if level not in track_obj.levels:
        raise ValueError(
            f'{framework.title}: "{level}" is not a level of the {track!r} track '
            f"(its levels: {', '.join(track_obj.levels)})"
        )
    entry = _entry(framework, track_obj)
    moves = [entry.by_trigger[name] for name in entry.machine.get_triggers(level)]
    return sorted(moves, key=lambda t: track_obj.index(t.to_level))


def apply_transition(framework: Framework, track: str, level: str, to_level: str) -> str:
    """Move a case's level through the machine and return the new level.

    Pure: nothing is stored; the caller writes the returned level (and its audit row).

    :param framework: a loaded framework.
    :param track: a track key (``"performance"``, ``"measure:RTT18"`` ...).
    :param level: the case's current level.
    :param to_level: the requested level.
    :raises KeyError: if the framework has no such track.
    :raises IllegalTransition: if the framework does not declare this move.
    """
    track_obj = framework.track_for(track)
    for side, value in (("current", level), ("requested", to_level)):
        if value not in track_obj.levels:
            raise IllegalTransition(
                framework,
                track,
                level,
                to_level,
                f'The {side} level "{value}" is not a level of this track '
                f"(its levels: {', '.join(track_obj.levels)}).",
            )
    if level == to_level:
        raise IllegalTransition(
            framework, track, level, to_level, "The case is already at that level."
        )
    entry = _entry(framework, track_obj)
    trigger = entry.trigger_for.get((level, to_level))
    if trigger is None:
        raise IllegalTransition(framework, track, level, to_level)
    adapter = _CaseAdapter(level)
    with entry.lock:
        entry.machine.add_model(adapter, initial=level)
        try:
            if not adapter.may_trigger(trigger):  # type: ignore[attr-defined]
                raise IllegalTransition(framework, track, level, to_level)
            try:
                fired = adapter.trigger(trigger)  # type: ignore[attr-defined]
            except MachineError as exc:  # never leak the library's error type
                raise IllegalTransition(framework, track, level, to_level, str(exc)) from exc
            if not fired or adapter.level != to_level:
                raise IllegalTransition(framework, track, level, to_level)
            return adapter.level
        finally:
            entry.machine.remove_model(adapter)
