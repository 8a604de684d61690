"""Framework files: dataclasses, the YAML loader and the validator.

A framework file (``state_machines/frameworks/<name>.yaml``) is configuration, not code
(DOMAIN.md, "What follows for the software"; DESIGN.md principle 1). The loader reads it with
PyYAML, the validator reports *every* problem with its path in the file (``transitions[3].to``,
``tracks.finance[1]``, ``levels.2c``) in words a non-programmer can act on, and only a file
with no problems becomes a :class:`Framework`.

File format
===========

Top-level keys (required ones marked ``*``)::

    framework*      short name, lower case, e.g. iqpf (must match the file name when bundled)
    title*          human title
    source*         the seed document and sections the rules come from
    domains*        list of domain (pillar) keys
    tracks*         track name -> {title, levels: [low ... high], per_measure: bool}
                    or the short form  track name -> [low ... high]
    levels*         level id -> {title*, description, monitoring, cadence, requires,
                    support_options}
    signatures*     rule name -> {any_of: [roles], count: n, sequence: [roles],
                    record_meeting: bool, title}
    transitions*    list of rules, see below
    roles           framework-specific decider roles: role key -> human title
    applies_to_unit_kinds, review_cycle, smart_labels, base_cadence, formal_notifications,
    deescalation    {max_steps: 1}  (DOMAIN.md: "every de-escalation steps down one level
                    unless the framework allows more")
    triggers, consequences, reminders, calendar (see the bundled files)

Consequences: an upward move into level L creates ``consequences.on_enter.L`` if present, else
``consequences.on_escalation``; a downward move creates ``consequences.on_deescalation``
(:meth:`Framework.consequences_for`).

Level ids may be written as numbers in YAML (``1``); they are always read as text (``"1"``).

Transition rules
----------------

Each rule says ``track``, ``from``, ``to`` and ``signed_by`` (the signature rule that decides
the move); ``needs`` names the criterion people check (informational). To avoid listing dozens
of moves by hand, ``track``, ``from`` and ``to`` may each be a single value, a list, or ``"*"``
(every track of the framework / every level of the track). The loader expands a rule into one
transition per (track, from, to) combination, skipping from == to, and then keeps only the
combinations that match the optional filters:

* ``direction: up`` or ``direction: down`` (relative to the track's order, low -> high);
* ``steps: n`` (the two levels are exactly ``n`` places apart on the track).

Filters only *select* from lists and ``"*"``; when ``from`` and ``to`` are both single values
the transition must satisfy them or it is reported as an error. Validation runs after
expansion, so a wildcard downward rule without ``steps: 1`` is refused when it would skip
more levels than ``deescalation.max_steps`` allows. Example (NHS Wales, one level down on every
pillar)::

    - {track: "*", from: "*", to: ["1", "2", "3"], direction: down, steps: 1,
       signed_by: director_general}

Per-measure tracks
------------------

A track with ``per_measure: true`` is a template: a case's track key is ``"<track>:<CODE>"``
(e.g. ``measure:RTT18``) and resolves to the template (DOMAIN.md, decision 1, framework C).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BUILTIN_ROLES",
    "FRAMEWORKS_DIR",
    "Duration",
    "Framework",
    "FrameworkError",
    "FrameworkInvalid",
    "Level",
    "SignatureRule",
    "Track",
    "Transition",
    "available_frameworks",
    "get_framework",
    "load_framework",
    "parse_duration",
    "validate_framework_data",
]

#: Folder holding the bundled framework files.
FRAMEWORKS_DIR = Path(__file__).resolve().parent / "frameworks"

#: Roles the application defines (DOMAIN.md, "Who uses it"). Framework files may add
#: their own decider roles under ``roles:``.
BUILTIN_ROLES: dict[str, str] = {
    "ceo": "Chief Executive",
    "executive_director": "Executive Director",
    "directorate_lead": "Directorate lead",
    "performance_team": "Performance team",
    "committee_member": "Committee member",
    "system_admin": "System administrator",
}

#: Calendar defaults (DOMAIN.md, decision 8).
DEFAULT_CALENDAR: dict[str, Any] = {
    "holidays": ["england", "wales"],
    "timezone": "Europe/London",
    "due_time": "17:00",
    "reminder_time": "08:00",
}

KNOWN_HOLIDAY_CALENDARS = ("england", "wales", "scotland", "northern_ireland")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_LEVEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DURATION_RE = re.compile(
    r"^\s*(\d+)\s+(working[ _]days?|days?|weeks?|months?|years?)\s*$", re.IGNORECASE
)

_TOP_REQUIRED = (
    "framework",
    "title",
    "source",
    "domains",
    "tracks",
    "levels",
    "signatures",
    "transitions",
)
_TOP_OPTIONAL = (
    "description",
    "review_cycle",
    "roles",
    "applies_to_unit_kinds",
    "smart_labels",
    "deescalation",
    "base_cadence",
    "formal_notifications",
    "triggers",
    "consequences",
    "reminders",
    "calendar",
    "monthly_returns",
)
_MONTHLY_RETURNS_KEYS = ("due", "review_after", "missed_returns_exception")
DEFAULT_MONTHLY_RETURNS = {
    "due": "5 working days",
    "review_after": "10 working days",
    "missed_returns_exception": 2,
}
_LEVEL_KEYS = ("title", "description", "monitoring", "cadence", "requires", "support_options")
_TRACK_KEYS = ("title", "levels", "per_measure")
_SIGNATURE_KEYS = ("title", "any_of", "count", "sequence", "record_meeting")
_TRANSITION_KEYS = ("track", "from", "to", "signed_by", "needs", "direction", "steps")
_TRIGGER_KEYS = ("id", "title", "description", "source", "propose", "when_any", "when_all")
_PROPOSE_KEYS = ("track", "to", "down_one_level")
_CONSEQUENCE_GROUPS = ("on_enter", "on_escalation", "on_deescalation")
_CONSEQUENCE_KEYS = (
    "letter",
    "deadlines",
    "meeting",
    "report_to",
    "notify",
    "review_period_if_plan_failing",
)
_REMINDER_KEYS = ("before_due", "after_due", "overdue_escalates_to", "overdue_grace")
_CALENDAR_KEYS = ("holidays", "timezone", "due_time", "reminder_time")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameworkError:
    """One problem in a framework file: where (``path``) and what (``message``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class FrameworkInvalid(Exception):
    """A framework file has problems; ``errors`` lists every one found."""

    def __init__(self, errors: Iterable[FrameworkError], source: str | None = None) -> None:
        self.errors: list[FrameworkError] = list(errors)
        self.source = source
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


# --------------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """A span such as ``10 working days`` or ``2 months``; ``unit`` is one of
    ``working_days``, ``days``, ``weeks``, ``months``, ``years``."""

    amount: int
    unit: str

    def __str__(self) -> str:
        unit = self.unit.replace("_", " ")
        return f"{self.amount} {unit if self.amount != 1 else unit.rstrip('s')}"


def parse_duration(text: str) -> Duration:
    """Parse ``"10 working days"``, ``"1 week"``, ``"2 months"`` ...

    :param text: the duration as written in a framework file.
    :raises ValueError: if the text is not a whole number followed by a unit.
    """
    match = _DURATION_RE.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit, "
            'e.g. "10 working days", "2 weeks" or "1 month"'
        )
    unit = match.group(2).lower().replace(" ", "_")
    if not unit.endswith("s"):
        unit += "s"
    return Duration(int(match.group(1)), unit)


@dataclass(frozen=True)
class Level:
    """One escalation level (shared by every track that lists it)."""

    id: str
    title: str
    description: str = ""
    cadence: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    support_options: dict[str, Any] | None = None
    monitoring: str = ""


@dataclass(frozen=True)
class Track:
    """An ordered ladder of levels (low -> high) a case moves on (DOMAIN.md, decision 1)."""

    name: str
    title: str
    levels: tuple[str, ...]
    per_measure: bool = False

    @property
    def initial(self) -> str:
        """The lowest level, where a new case starts."""
        return self.levels[0]

    def index(self, level: str) -> int:
        """Position of ``level`` on this track (0 = lowest).

        :raises ValueError: if the level is not on this track.
        """
        return self.levels.index(level)


@dataclass(frozen=True)
class SignatureRule:
    """Who must sign a decision for it to take effect (DOMAIN.md, decision 2)."""

    name: str
    any_of: tuple[str, ...]
    count: int = 1
    sequence: tuple[str, ...] = ()
    record_meeting: bool = False
    title: str = ""


@dataclass(frozen=True)
class Transition:
    """One allowed move on a track; anything not declared is refused."""

    track: str
    from_level: str
    to_level: str
    signed_by: str
    needs: str | None = None
    direction: str = "up"
    trigger: str = ""


@dataclass(frozen=True, eq=False)
class Framework:
    """A validated framework file. Treat the plain-data fields as read-only: bundled
    frameworks are cached and shared (:func:`get_framework`).

    ``eq=False``: frameworks compare and hash by identity, so they can be used as cache keys.
    """

    name: str
    title: str
    source: str
    domains: tuple[str, ...]
    tracks: dict[str, Track]
    levels: dict[str, Level]
    signatures: dict[str, SignatureRule]
    transitions: tuple[Transition, ...]
    triggers: tuple[dict[str, Any], ...] = ()
    consequences: dict[str, Any] = field(default_factory=dict)
    reminders: dict[str, Any] = field(default_factory=dict)
    calendar: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CALENDAR))
    roles: dict[str, str] = field(default_factory=dict)
    applies_to_unit_kinds: tuple[str, ...] = ()
    deescalation_max_steps: int = 1
    description: str = ""
    review_cycle: str = "monthly"
    smart_labels: tuple[str, ...] = ()
    base_cadence: dict[str, Any] = field(default_factory=dict)
    formal_notifications: dict[str, Any] | None = None
    # When each unit's monthly return is due and when the review runs, after month end.
    monthly_returns: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MONTHLY_RETURNS))
    path: str | None = None

    # -- lookups ---------------------------------------------------------------------------

    def track_for(self, track_key: str) -> Track:
        """The track a case's track key runs on.

        ``"measure:RTT18"`` resolves to the per-measure template ``measure``; plain keys
        resolve directly.

        :raises KeyError: if the key names no track of this framework.
        """
        track = self.tracks.get(track_key)
        if track is not None:
            return track
        template, sep, code = track_key.partition(":")
        track = self.tracks.get(template)
        if sep and code and track is not None and track.per_measure:
            return track
        per_measure = [t.name for t in self.tracks.values() if t.per_measure]
        hint = (
            f'; per-measure keys look like "{per_measure[0]}:<MEASURE_CODE>"' if per_measure else ""
        )
        raise KeyError(
            f"The {self.title} framework has no track {track_key!r} "
            f"(tracks: {', '.join(self.tracks)}){hint}"
        )

    def initial_level(self, track_key: str) -> str:
        """The lowest level of the track, where a new case starts."""
        return self.track_for(track_key).levels[0]

    def level_title(self, level_id: str) -> str:
        """Human title of a level.

        :raises KeyError: for an unknown level id.
        """
        try:
            return self.levels[level_id].title
        except KeyError:
            raise KeyError(
                f"The {self.title} framework has no level {level_id!r} "
                f"(levels: {', '.join(self.levels)})"
            ) from None

    def transition(self, track_key: str, from_level: str, to_level: str) -> Transition | None:
        """The declared transition between two levels of a track, or ``None``."""
        track = self.track_for(track_key)
        for t in self.transitions:
            if t.track == track.name and t.from_level == from_level and t.to_level == to_level:
                return t
        return None

    def consequences_for(self, transition: Transition) -> dict[str, Any]:
        """What a decided transition creates: an upward move into level L uses
        ``consequences.on_enter.L`` if present, else ``consequences.on_escalation``; a downward
        move uses ``consequences.on_deescalation``. Returns ``{}`` when nothing is declared."""
        if transition.direction == "down":
            return self.consequences.get("on_deescalation", {})
        on_enter = self.consequences.get("on_enter", {})
        if transition.to_level in on_enter:
            return on_enter[transition.to_level]
        return self.consequences.get("on_escalation", {})

    @property
    def decider_roles(self) -> dict[str, str]:
        """Built-in roles plus this framework's own roles, key -> title."""
        return {**BUILTIN_ROLES, **self.roles}


# --------------------------------------------------------------------------------------------
# YAML reading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (PyYAML silently keeps the last one)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[FrameworkError] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except Exception:  # noqa: S112 - unhashable keys are reported by PyYAML itself
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicate_keys.append(
                    FrameworkError(
                        "<yaml>",
                        f"line {line}: the key {key!r} appears twice in the same block "
                        f"(first on line {seen[key]}); only one is allowed",
                    )
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str) -> tuple[Any, list[FrameworkError]]:
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "cannot be read"
        return None, [
            FrameworkError("<yaml>", f"{where}the file is not valid YAML ({problem.strip()})")
        ]
    except yaml.YAMLError as exc:
        return None, [FrameworkError("<yaml>", f"the file is not valid YAML ({exc})")]
    finally:
        loader.dispose()
    return data, loader.duplicate_keys


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, Mapping):
        return "a block of keys"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "empty"
    return f"{type(value).__name__} {value!r}"


def _level_id(value: Any) -> str | None:
    """Level ids are text; YAML turns ``1`` into a number, so accept ints too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


class _Checker:
    """Collects errors while turning raw YAML data into a :class:`Framework`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[FrameworkError] = []

    # -- small helpers ---------------------------------------------------------------------

    def error(self, path: str, message: str) -> None:
        err = FrameworkError(path, message)
        if err not in self.errors:
            self.errors.append(err)

    def unknown_keys(self, data: Mapping[Any, Any], allowed: Iterable[str], path: str) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.error(where, f"unknown key {key!r}; expected one of: {', '.join(allowed)}")

    def mapping(self, value: Any, path: str, *, required: bool = True) -> dict[Any, Any] | None:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.error(path, f"must be a block of 'key: value' entries, not {_describe(value)}")
            return None
        return dict(value)

    def text(self, value: Any, path: str, *, required: bool = True) -> str | None:
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            self.error(path, f"must be some text, not {_describe(value)}")
            return None
        return str(value)

    def name(self, value: Any, path: str, what: str) -> str | None:
        text = self.text(value, path)
        if text is not None and not _NAME_RE.match(text):
            self.error(
                path,
                f"{what} {text!r} must be lower-case letters, digits and underscores, "
                "starting with a letter",
            )
            return None
        return text

    def text_list(self, value: Any, path: str, *, required: bool = True) -> list[str]:
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.error(path, f"must be a list (e.g. [a, b]), not {_describe(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            text = self.text(item, f"{path}[{i}]")
            if text is not None:
                out.append(text)
        return out

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, not {_describe(value)}")
            return default
        return value

    def positive_int(self, value: Any, path: str, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(path, f"must be a whole number of 1 or more, not {_describe(value)}")
            return default
        return value

    def duration(self, value: Any, path: str) -> None:
        try:
            parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))

    def durations(self, value: Any, path: str) -> None:
        """A duration, or a list of alternative durations."""
        if isinstance(value, list):
            if not value:
                self.error(path, "must list at least one duration")
            for i, item in enumerate(value):
                self.duration(item, f"{path}[{i}]")
        else:
            self.duration(value, path)

    def role(self, value: Any, path: str, roles: Mapping[str, str]) -> str | None:
        text = self.text(value, path)
        if text is not None and text not in BUILTIN_ROLES and text not in roles:
            self.error(
                path,
                f"unknown role {text!r}: use a built-in role ({', '.join(BUILTIN_ROLES)}) "
                "or declare it under 'roles:'",
            )
            return None
        return text

    def level_ref(
        self, value: Any, path: str, levels: Mapping[str, Any] | None, *, what: str = "level"
    ) -> str | None:
        """A level id; checked against ``levels`` unless they failed to load (None)."""
        level = _level_id(value)
        if level is None:
            self.error(path, f"must be a level id, not {_describe(value)}")
            return None
        if levels is not None and level not in levels:
            self.error(
                path,
                f"unknown {what} {level!r}: it is not declared under 'levels' "
                f"(declared: {', '.join(levels) or 'none'})",
            )
            return None
        return level

    # -- sections --------------------------------------------------------------------------

    def check(self, data: Any) -> Framework | None:  # noqa: C901 - one pass over the file
        if not isinstance(data, Mapping):
            self.error(
                "<root>",
                "the file must be a block of 'key: value' entries "
                f"(framework, title, tracks, ...), not {_describe(data)}",
            )
            return None
        data = dict(data)
        for key in _TOP_REQUIRED:
            if key not in data or data[key] is None:
                self.error(key, f"required key {key!r} is missing")
        self.unknown_keys(data, _TOP_REQUIRED + _TOP_OPTIONAL, "")

        name = (
            self.name(data.get("framework"), "framework", "framework name")
            if (data.get("framework") is not None)
            else None
        )
        title = self.text(data.get("title"), "title", required=False) or ""
        source = self.text(data.get("source"), "source", required=False) or ""
        description = self.text(data.get("description"), "description", required=False) or ""
        review_cycle = self.text(data.get("review_cycle"), "review_cycle", required=False)
        domains = self.text_list(data.get("domains"), "domains", required=False)
        unit_kinds = self.text_list(
            data.get("applies_to_unit_kinds"), "applies_to_unit_kinds", required=False
        )
        smart = self.text_list(data.get("smart_labels"), "smart_labels", required=False)
        if smart and len(smart) != 5:
            self.error("smart_labels", "must list the five SMART words, in order")

        roles = self._roles(data.get("roles"))
        levels = self._levels(data.get("levels"), roles)
        tracks = self._tracks(data.get("tracks"), levels)
        signatures = self._signatures(data.get("signatures"), roles)
        max_steps = self._deescalation(data.get("deescalation"))
        transitions = self._transitions(
            data.get("transitions"), tracks, levels, signatures, max_steps
        )
        if tracks is not None and levels is not None and transitions is not None:
            self._reachability(tracks, levels, transitions, data.get("tracks"))
        triggers = self._triggers(data.get("triggers"), tracks, levels)
        consequences = self._consequences(data.get("consequences"), levels, roles)
        reminders = self._reminders(data.get("reminders"))
        calendar = self._calendar(data.get("calendar"))
        monthly_returns = self._monthly_returns(data.get("monthly_returns"))
        base_cadence = self._base_cadence(data.get("base_cadence"))
        notifications = self._formal_notifications(
            data.get("formal_notifications"), levels, signatures
        )

        if self.errors:
            return None
        if name is None or tracks is None or levels is None or signatures is None:
            return None
        if transitions is None:
            return None
        return Framework(
            name=name,
            title=title,
            source=source,
            domains=tuple(domains),
            tracks=tracks,
            levels=levels,
            signatures=signatures,
            transitions=tuple(transitions),
            triggers=tuple(triggers),
            consequences=consequences,
            reminders=reminders,
            calendar=calendar,
            roles=roles,
            applies_to_unit_kinds=tuple(unit_kinds),
            deescalation_max_steps=max_steps,
            description=description,
            review_cycle=review_cycle or "monthly",
            smart_labels=tuple(smart),
            base_cadence=base_cadence,
            formal_notifications=notifications,
            monthly_returns=monthly_returns,
            path=self.source,
        )

    def _roles(self, raw: Any) -> dict[str, str]:
        data = self.mapping(raw, "roles", required=False)
        roles: dict[str, str] = {}
        for key, title in (data or {}).items():
            path = f"roles.{key}"
            role = self.name(key, path, "role key")
            text = self.text(title, path)
            if role is None or text is None:
                continue
            if role in BUILTIN_ROLES:
                self.error(path, f"{role!r} is already a built-in role; do not declare it again")
                continue
            roles[role] = text
        return roles

    def _levels(self, raw: Any, roles: dict[str, str]) -> dict[str, Level] | None:
        if raw is None:
            return None
        data = self.mapping(raw, "levels")
        if data is None:
            return None
        if not data:
            self.error("levels", "must declare at least one level")
        levels: dict[str, Level] = {}
        for key, body in data.items():
            level_id = _level_id(key)
            path = f"levels.{key}"
            if level_id is None or not _LEVEL_RE.match(level_id):
                self.error(
                    path, f"level id {key!r} must be letters, digits and underscores (e.g. 2a)"
                )
                continue
            spec = self.mapping(body, path)
            if spec is None:
                continue
            self.unknown_keys(spec, _LEVEL_KEYS, path)
            title = self.text(spec.get("title"), f"{path}.title")
            cadence = self.mapping(spec.get("cadence"), f"{path}.cadence", required=False) or {}
            for ckey, cvalue in cadence.items():
                self.durations(cvalue, f"{path}.cadence.{ckey}")
            requires = self.text_list(spec.get("requires"), f"{path}.requires", required=False)
            support = spec.get("support_options")
            if support is not None:
                support = self._support_options(support, f"{path}.support_options", roles)
            levels[level_id] = Level(
                id=level_id,
                title=title or level_id,
                description=self.text(
                    spec.get("description"), f"{path}.description", required=False
                )
                or "",
                cadence=cadence,
                requires=tuple(requires),
                support_options=support,
                monitoring=self.text(spec.get("monitoring"), f"{path}.monitoring", required=False)
                or "",
            )
        return levels

    def _support_options(self, raw: Any, path: str, roles: dict[str, str]) -> dict[str, Any] | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, ("chosen_by", "options"), path)
        self.role(data.get("chosen_by"), f"{path}.chosen_by", roles)
        options = self.mapping(data.get("options"), f"{path}.options")
        for key, spec in (options or {}).items():
            opath = f"{path}.options.{key}"
            body = self.mapping(spec, opath, required=False)
            if body and "every" in body:
                self.durations(body["every"], f"{opath}.every")
        return data

    def _tracks(self, raw: Any, levels: dict[str, Level] | None) -> dict[str, Track] | None:
        if raw is None:
            return None
        data = self.mapping(raw, "tracks")
        if data is None:
            return None
        if not data:
            self.error("tracks", "must declare at least one track")
        tracks: dict[str, Track] = {}
        used: set[str] = set()
        valid = True
        for key, body in data.items():
            path = f"tracks.{key}"
            track_name = self.name(key, path, "track name")
            if track_name is None:
                valid = False
                continue
            if isinstance(body, list):
                level_list, list_path = body, path
                title, per_measure = track_name.replace("_", " ").capitalize(), False
            elif isinstance(body, Mapping):
                self.unknown_keys(body, _TRACK_KEYS, path)
                level_list, list_path = body.get("levels"), f"{path}.levels"
                title = self.text(body.get("title"), f"{path}.title", required=False) or (
                    track_name.replace("_", " ").capitalize()
                )
                per_measure = self.boolean(body.get("per_measure"), f"{path}.per_measure", False)
            else:
                self.error(
                    path,
                    "must be the list of the track's levels from lowest to highest "
                    f'(e.g. ["1", "2a", "3"]), not {_describe(body)}',
                )
                valid = False
                continue
            if not isinstance(level_list, list) or not level_list:
                self.error(
                    list_path,
                    "must be a non-empty list of level ids from lowest to highest "
                    f'(e.g. ["1", "2a", "3"]), not {_describe(level_list)}',
                )
                valid = False
                continue
            ids: list[str] = []
            for i, item in enumerate(level_list):
                ipath = f"{list_path}[{i}]"
                level = self.level_ref(item, ipath, levels)
                if level is None:
                    valid = False
                    continue
                if level in ids:
                    self.error(ipath, f"level {level!r} is listed twice on the {track_name} track")
                    valid = False
                    continue
                ids.append(level)
            used.update(ids)
            tracks[track_name] = Track(track_name, title, tuple(ids), per_measure)
        if levels is not None and valid:
            for level_id in levels:
                if level_id not in used and data:
                    self.error(
                        f"levels.{level_id}",
                        f"level {level_id!r} is declared but no track uses it; "
                        "add it to a track or remove it",
                    )
        return tracks if valid else None

    def _signatures(self, raw: Any, roles: dict[str, str]) -> dict[str, SignatureRule] | None:
        if raw is None:
            return None
        data = self.mapping(raw, "signatures")
        if data is None:
            return None
        rules: dict[str, SignatureRule] = {}
        for key, body in data.items():
            path = f"signatures.{key}"
            rule_name = self.name(key, path, "signature rule name")
            spec = self.mapping(body, path)
            if rule_name is None or spec is None:
                continue
            self.unknown_keys(spec, _SIGNATURE_KEYS, path)
            any_of_raw = spec.get("any_of")
            sequence_raw = spec.get("sequence")
            if any_of_raw is None and sequence_raw is None:
                self.error(path, "must say who signs: 'any_of: [roles]' or 'sequence: [roles]'")
            any_of = [
                r
                for i, r in enumerate(self.text_list(any_of_raw, f"{path}.any_of", required=False))
                if self.role(r, f"{path}.any_of[{i}]", roles)
            ]
            sequence = [
                r
                for i, r in enumerate(
                    self.text_list(sequence_raw, f"{path}.sequence", required=False)
                )
                if self.role(r, f"{path}.sequence[{i}]", roles)
            ]
            count = self.positive_int(
                spec.get("count"), f"{path}.count", len(sequence) if sequence else 1
            )
            if sequence and count != len(sequence):
                self.error(
                    f"{path}.count",
                    f"a sequence of {len(sequence)} signers needs count {len(sequence)}, "
                    f"not {count}",
                )
            for role in sequence:
                if role not in any_of:
                    any_of.append(role)
            rules[rule_name] = SignatureRule(
                name=rule_name,
                any_of=tuple(any_of),
                count=count,
                sequence=tuple(sequence),
                record_meeting=self.boolean(
                    spec.get("record_meeting"), f"{path}.record_meeting", False
                ),
                title=self.text(spec.get("title"), f"{path}.title", required=False) or "",
            )
        return rules

    def _deescalation(self, raw: Any) -> int:
        data = self.mapping(raw, "deescalation", required=False)
        if not data:
            return 1
        self.unknown_keys(data, ("max_steps",), "deescalation")
        return self.positive_int(data.get("max_steps"), "deescalation.max_steps", 1)

    # -- transitions -----------------------------------------------------------------------

    def _selector(
        self, value: Any, path: str, choices: tuple[str, ...] | None, what: str
    ) -> tuple[list[tuple[str, str]], bool]:
        """Expand a single value / list / "*" into [(value, path)]; bool = was single."""
        if value == "*":
            return [(c, path) for c in (choices or ())], False
        if isinstance(value, list):
            if not value:
                self.error(path, f"must list at least one {what}")
            out = []
            for i, item in enumerate(value):
                ident = _level_id(item)
                if ident is None:
                    self.error(f"{path}[{i}]", f"must be a {what}, not {_describe(item)}")
                else:
                    out.append((ident, f"{path}[{i}]"))
            return out, False
        ident = _level_id(value)
        if ident is None:
            self.error(path, f'must be a {what}, a list of them, or "*", not {_describe(value)}')
            return [], True
        return [(ident, path)], True

    def _transitions(  # noqa: C901 - expansion and checks in one place keeps the paths right
        self,
        raw: Any,
        tracks: dict[str, Track] | None,
        levels: dict[str, Level] | None,
        signatures: dict[str, SignatureRule] | None,
        max_steps: int,
    ) -> list[Transition] | None:
        if raw is None:
            return None
        if not isinstance(raw, list):
            self.error("transitions", f"must be a list of transition rules, not {_describe(raw)}")
            return None
        result: list[Transition] = []
        seen: dict[tuple[str, str, str], int] = {}
        errors_before_all = len(self.errors)
        for index, rule in enumerate(raw):
            path = f"transitions[{index}]"
            errors_before = len(self.errors)
            spec = self.mapping(rule, path)
            if spec is None:
                continue
            self.unknown_keys(spec, _TRANSITION_KEYS, path)
            complete = True
            for key in ("track", "from", "to"):
                if spec.get(key) is None:
                    self.error(f"{path}.{key}", f"required key {key!r} is missing")
                    complete = False
            signed_by = spec.get("signed_by")
            if signed_by is None:
                self.error(
                    f"{path}.signed_by",
                    "missing decision right: every transition must say which signature rule "
                    "decides it (signed_by)",
                )
            else:
                signed_by = self.text(signed_by, f"{path}.signed_by")
                if (
                    signed_by is not None
                    and signatures is not None
                    and (signed_by not in signatures)
                ):
                    self.error(
                        f"{path}.signed_by",
                        f"missing decision right: no signature rule called {signed_by!r} "
                        f"is declared under 'signatures' (declared: "
                        f"{', '.join(signatures) or 'none'})",
                    )
            needs = self.text(spec.get("needs"), f"{path}.needs", required=False)
            direction = spec.get("direction")
            if direction is not None and direction not in ("up", "down"):
                self.error(
                    f"{path}.direction", f"must be 'up' or 'down', not {_describe(direction)}"
                )
                direction = None
            steps = spec.get("steps")
            if steps is not None:
                steps = self.positive_int(steps, f"{path}.steps", 0) or None
            if tracks is None or levels is None or not complete:
                continue
            track_values, _ = self._selector(
                spec.get("track"), f"{path}.track", tuple(tracks), "track name"
            )
            expanded = 0
            for track_name, track_path in track_values:
                track = tracks.get(track_name)
                if track is None:
                    self.error(
                        track_path,
                        f"unknown track {track_name!r} (tracks: {', '.join(tracks)})",
                    )
                    continue
                froms, single_from = self._selector(
                    spec.get("from"), f"{path}.from", track.levels, "level id"
                )
                tos, single_to = self._selector(
                    spec.get("to"), f"{path}.to", track.levels, "level id"
                )
                explicit = single_from and single_to
                for from_level, from_path in froms:
                    if not self._on_track(from_level, from_path, track, levels, "from"):
                        continue
                    for to_level, to_path in tos:
                        if not self._on_track(to_level, to_path, track, levels, "to"):
                            continue
                        if from_level == to_level:
                            if explicit:
                                self.error(
                                    path,
                                    f"from and to are the same level ({from_level!r}); "
                                    "a transition must change the level",
                                )
                            continue
                        distance = track.index(to_level) - track.index(from_level)
                        actual = "up" if distance > 0 else "down"
                        if direction is not None and actual != direction:
                            if explicit:
                                self.error(
                                    f"{path}.direction",
                                    f"{from_level} -> {to_level} goes {actual}, "
                                    f"but the rule says direction: {direction}",
                                )
                            continue
                        if steps is not None and abs(distance) != steps:
                            if explicit:
                                self.error(
                                    f"{path}.steps",
                                    f"{from_level} -> {to_level} moves {abs(distance)} "
                                    f"level(s), but the rule says steps: {steps}",
                                )
                            continue
                        expanded += 1
                        key = (track.name, from_level, to_level)
                        if key in seen:
                            self.error(
                                path,
                                f"duplicate transition on the {track.name} track from "
                                f"{from_level} to {to_level} (already declared by "
                                f"transitions[{seen[key]}])",
                            )
                            continue
                        seen[key] = index
                        if actual == "down" and -distance > max_steps:
                            self.error(
                                path,
                                f"de-escalation on the {track.name} track from {from_level} "
                                f"to {to_level} moves down {-distance} levels at once; this "
                                f"framework allows at most {max_steps} level(s) down at a time "
                                "(deescalation.max_steps)",
                            )
                            continue
                        result.append(
                            Transition(
                                track=track.name,
                                from_level=from_level,
                                to_level=to_level,
                                signed_by=signed_by or "",
                                needs=needs,
                                direction=actual,
                                trigger=f"move_{from_level}_to_{to_level}",
                            )
                        )
            if expanded == 0 and len(self.errors) == errors_before:
                self.error(path, "this rule matches no transitions; check from, to and filters")
        # Trigger names must be unique per track (they name events in the machine).
        by_trigger: dict[tuple[str, str], Transition] = {}
        for t in result:
            other = by_trigger.setdefault((t.track, t.trigger), t)
            if other is not t:
                self.error(
                    "transitions",
                    f"level ids on the {t.track} track make the moves "
                    f"{other.from_level}->{other.to_level} and {t.from_level}->{t.to_level} "
                    "indistinguishable; rename a level",
                )
        return result if len(self.errors) == errors_before_all else None

    def _on_track(
        self, level: str, path: str, track: Track, levels: Mapping[str, Level], side: str
    ) -> bool:
        if level in track.levels:
            return True
        if level not in levels:
            self.error(
                path,
                f"unknown level {level!r}: it is not declared under 'levels' "
                f"(declared: {', '.join(levels)})",
            )
        elif side == "to":
            self.error(
                path,
                f"transition to nowhere: level {level!r} is not on the {track.name} track "
                f"(its levels: {', '.join(track.levels)})",
            )
        else:
            self.error(
                path,
                f"level {level!r} is not on the {track.name} track "
                f"(its levels: {', '.join(track.levels)}), so no case can move from it",
            )
        return False

    def _reachability(
        self,
        tracks: dict[str, Track],
        levels: dict[str, Level],
        transitions: list[Transition],
        raw_tracks: Any,
    ) -> None:
        for track in tracks.values():
            reached = {track.initial}
            frontier = [track.initial]
            while frontier:
                current = frontier.pop()
                for t in transitions:
                    if (
                        t.track == track.name
                        and t.from_level == current
                        and t.to_level not in reached
                    ):
                        reached.add(t.to_level)
                        frontier.append(t.to_level)
            body = raw_tracks.get(track.name) if isinstance(raw_tracks, Mapping) else None
            base = f"tracks.{track.name}" + (".levels" if isinstance(body, Mapping) else "")
            for i, level in enumerate(track.levels):
                if level not in reached:
                    self.error(
                        f"{base}[{i}]",
                        f"level {level!r} ({levels[level].title}) can never be reached: "
                        f"no chain of transitions leads to it from the starting level "
                        f"{track.initial!r}",
                    )

    # -- plain-data sections ---------------------------------------------------------------

    def _triggers(
        self,
        raw: Any,
        tracks: dict[str, Track] | None,
        levels: dict[str, Level] | None,
    ) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.error("triggers", f"must be a list of trigger rules, not {_describe(raw)}")
            return []
        ids: dict[str, int] = {}
        out = []
        for index, rule in enumerate(raw):
            path = f"triggers[{index}]"
            spec = self.mapping(rule, path)
            if spec is None:
                continue
            self.unknown_keys(spec, _TRIGGER_KEYS, path)
            trigger_id = self.name(spec.get("id"), f"{path}.id", "trigger id")
            if trigger_id is not None:
                if trigger_id in ids:
                    self.error(
                        f"{path}.id",
                        f"trigger id {trigger_id!r} is already used by triggers[{ids[trigger_id]}]",
                    )
                ids.setdefault(trigger_id, index)
            propose = self.mapping(spec.get("propose"), f"{path}.propose")
            if propose is not None:
                self._propose(propose, f"{path}.propose", tracks, levels)
            if spec.get("when_any") is None and spec.get("when_all") is None:
                self.error(path, "must say when it fires: 'when_any: [...]' or 'when_all: [...]'")
            for key in ("when_any", "when_all"):
                conditions = spec.get(key)
                if conditions is None:
                    continue
                if not isinstance(conditions, list) or not conditions:
                    self.error(f"{path}.{key}", "must be a non-empty list of conditions")
                    continue
                for i, condition in enumerate(conditions):
                    cpath = f"{path}.{key}[{i}]"
                    cond = self.mapping(condition, cpath)
                    if cond is not None and cond.get("signal") is None:
                        self.error(cpath, "every condition needs a 'signal'")
                    elif cond is not None:
                        self.text(cond.get("signal"), f"{cpath}.signal")
            normalised = dict(spec)
            if propose is not None:
                normalised["propose"] = {
                    k: (_level_id(v) if k == "to" else v) for k, v in propose.items()
                }
            out.append(normalised)
        return out

    def _propose(
        self,
        propose: dict[Any, Any],
        path: str,
        tracks: dict[str, Track] | None,
        levels: dict[str, Level] | None,
    ) -> None:
        self.unknown_keys(propose, _PROPOSE_KEYS, path)
        track = None
        if propose.get("track") is not None:
            track_name = self.text(propose["track"], f"{path}.track")
            if tracks is not None and track_name is not None:
                track = tracks.get(track_name)
                if track is None:
                    self.error(
                        f"{path}.track",
                        f"unknown track {track_name!r} (tracks: {', '.join(tracks)})",
                    )
        down = self.boolean(propose.get("down_one_level"), f"{path}.down_one_level", False)
        if propose.get("to") is None:
            if not down:
                self.error(path, "must say the level to propose ('to') or 'down_one_level: true'")
            return
        if down:
            self.error(path, "use either 'to' or 'down_one_level', not both")
        if levels is None:
            return
        level = self.level_ref(propose["to"], f"{path}.to", levels)
        if level is None:
            return
        if track is not None and level not in track.levels:
            self.error(
                f"{path}.to",
                f"level {level!r} is not on the {track.name} track "
                f"(its levels: {', '.join(track.levels)})",
            )
        elif (
            track is None
            and tracks is not None
            and not any(level in t.levels for t in tracks.values())
        ):
            self.error(f"{path}.to", f"level {level!r} is not on any track")

    def _consequences(
        self, raw: Any, levels: dict[str, Level] | None, roles: dict[str, str]
    ) -> dict[str, Any]:
        data = self.mapping(raw, "consequences", required=False)
        if not data:
            return {}
        self.unknown_keys(data, _CONSEQUENCE_GROUPS, "consequences")
        out: dict[str, Any] = {}
        on_enter = data.get("on_enter")
        if on_enter is not None:
            entries = self.mapping(on_enter, "consequences.on_enter") or {}
            out["on_enter"] = {}
            for key, body in entries.items():
                path = f"consequences.on_enter.{key}"
                level = self.level_ref(key, path, levels)
                spec = self._consequence(body, path, roles)
                if level is not None and spec is not None:
                    out["on_enter"][level] = spec
        for group in ("on_escalation", "on_deescalation"):
            if data.get(group) is not None:
                spec = self._consequence(data[group], f"consequences.{group}", roles)
                if spec is not None:
                    out[group] = spec
        return out

    def _consequence(self, raw: Any, path: str, roles: dict[str, str]) -> dict[str, Any] | None:
        spec = self.mapping(raw, path)
        if spec is None:
            return None
        self.unknown_keys(spec, _CONSEQUENCE_KEYS, path)
        if spec.get("letter") is not None:
            self.name(spec["letter"], f"{path}.letter", "letter kind")
        deadlines = spec.get("deadlines")
        if deadlines is not None:
            if not isinstance(deadlines, list):
                self.error(f"{path}.deadlines", f"must be a list, not {_describe(deadlines)}")
            else:
                for i, item in enumerate(deadlines):
                    dpath = f"{path}.deadlines[{i}]"
                    deadline = self.mapping(item, dpath)
                    if deadline is None:
                        continue
                    self.unknown_keys(deadline, ("kind", "in", "repeat_every"), dpath)
                    self.name(deadline.get("kind"), f"{dpath}.kind", "deadline kind")
                    if deadline.get("in") is None:
                        self.error(dpath, "must say when it falls due, e.g. 'in: 10 working days'")
                    else:
                        self.duration(deadline["in"], f"{dpath}.in")
                    if deadline.get("repeat_every") is not None:
                        self.duration(deadline["repeat_every"], f"{dpath}.repeat_every")
        meeting = spec.get("meeting")
        if meeting is not None:
            mpath = f"{path}.meeting"
            body = self.mapping(meeting, mpath)
            if body is not None:
                self.unknown_keys(body, ("kind", "chair", "invite", "optional", "within"), mpath)
                self.name(body.get("kind"), f"{mpath}.kind", "meeting kind")
                if body.get("chair") is not None:
                    self.role(body["chair"], f"{mpath}.chair", roles)
                self.text_list(body.get("invite"), f"{mpath}.invite", required=False)
                self.mapping(body.get("optional"), f"{mpath}.optional", required=False)
                if body.get("within") is not None:
                    self.duration(body["within"], f"{mpath}.within")
        for key in ("report_to", "notify"):
            self.text_list(spec.get(key), f"{path}.{key}", required=False)
        if spec.get("review_period_if_plan_failing") is not None:
            self.duration(
                spec["review_period_if_plan_failing"], f"{path}.review_period_if_plan_failing"
            )
        return spec

    def _reminders(self, raw: Any) -> dict[str, Any]:
        data = self.mapping(raw, "reminders", required=False)
        if not data:
            return {}
        self.unknown_keys(data, _REMINDER_KEYS, "reminders")
        for key in ("before_due", "after_due"):
            if data.get(key) is not None:
                if not isinstance(data[key], list):
                    self.error(f"reminders.{key}", "must be a list of durations")
                else:
                    for i, item in enumerate(data[key]):
                        self.duration(item, f"reminders.{key}[{i}]")
        if data.get("overdue_grace") is not None:
            self.duration(data["overdue_grace"], "reminders.overdue_grace")
        if data.get("overdue_escalates_to") is not None:
            self.text(data["overdue_escalates_to"], "reminders.overdue_escalates_to")
        return data

    def _monthly_returns(self, raw: Any) -> dict[str, Any]:
        data = self.mapping(raw, "monthly_returns", required=False)
        result = dict(DEFAULT_MONTHLY_RETURNS)
        if not data:
            return result
        self.unknown_keys(data, _MONTHLY_RETURNS_KEYS, "monthly_returns")
        for key in ("due", "review_after"):
            if data.get(key) is not None:
                try:
                    duration = parse_duration(data[key])
                except ValueError as problem:
                    self.error(f"monthly_returns.{key}", str(problem))
                    continue
                if duration.unit != "working_days":
                    self.error(
                        f"monthly_returns.{key}",
                        'count it in working days after month end, e.g. "5 working days"',
                    )
                    continue
                result[key] = data[key]
        missed = data.get("missed_returns_exception")
        if missed is not None:
            if isinstance(missed, bool) or not isinstance(missed, int) or missed < 1:
                self.error(
                    "monthly_returns.missed_returns_exception",
                    "must be a whole number of months, 1 or more",
                )
            else:
                result["missed_returns_exception"] = missed
        return result

    def _calendar(self, raw: Any) -> dict[str, Any]:
        data = self.mapping(raw, "calendar", required=False)
        calendar = dict(DEFAULT_CALENDAR)
        if not data:
            return calendar
        self.unknown_keys(data, _CALENDAR_KEYS, "calendar")
        if data.get("holidays") is not None:
            holidays = self.text_list(data["holidays"], "calendar.holidays")
            for i, item in enumerate(holidays):
                if item not in KNOWN_HOLIDAY_CALENDARS:
                    self.error(
                        f"calendar.holidays[{i}]",
                        f"unknown bank-holiday calendar {item!r} "
                        f"(known: {', '.join(KNOWN_HOLIDAY_CALENDARS)})",
                    )
            calendar["holidays"] = holidays
        if data.get("timezone") is not None:
            tz = self.text(data["timezone"], "calendar.timezone")
            if tz is not None:
                try:
                    from zoneinfo import ZoneInfo

                    ZoneInfo(tz)
                except Exception:
                    self.error("calendar.timezone", f"unknown time zone {tz!r}")
                calendar["timezone"] = tz
        for key in ("due_time", "reminder_time"):
            if data.get(key) is not None:
                value = data[key]
                if isinstance(value, int) and not isinstance(value, bool):
                    # YAML 1.1 reads an unquoted 17:00 as a base-60 number (1020).
                    self.error(
                        f"calendar.{key}", 'write the time in quotes, e.g. "17:00" (24-hour)'
                    )
                elif not isinstance(value, str) or not _TIME_RE.match(value):
                    self.error(
                        f"calendar.{key}", f'must be a time like "17:00", not {_describe(value)}'
                    )
                else:
                    calendar[key] = value
        return calendar

    def _base_cadence(self, raw: Any) -> dict[str, Any]:
        data = self.mapping(raw, "base_cadence", required=False)
        for key, body in (data or {}).items():
            path = f"base_cadence.{key}"
            spec = self.mapping(body, path)
            if spec is None:
                continue
            if spec.get("every") is None:
                self.error(path, "must say how often, e.g. 'every: 2 weeks'")
            else:
                self.durations(spec["every"], f"{path}.every")
        return data or {}

    def _formal_notifications(
        self,
        raw: Any,
        levels: dict[str, Level] | None,
        signatures: dict[str, SignatureRule] | None,
    ) -> dict[str, Any] | None:
        if raw is None:
            return None
        data = self.mapping(raw, "formal_notifications")
        if data is None:
            return None
        path = "formal_notifications"
        self.unknown_keys(data, ("allowed_at", "kinds", "signed_by"), path)
        allowed = data.get("allowed_at")
        if not isinstance(allowed, list) or not allowed:
            self.error(f"{path}.allowed_at", "must list the levels where notifications may be sent")
            allowed = []
        normalised = []
        for i, item in enumerate(allowed):
            level = self.level_ref(item, f"{path}.allowed_at[{i}]", levels)
            if level is not None:
                normalised.append(level)
        self.text_list(data.get("kinds"), f"{path}.kinds")
        signed_by = data.get("signed_by")
        if signed_by is not None and signatures is not None and signed_by not in signatures:
            self.error(
                f"{path}.signed_by",
                f"no signature rule called {signed_by!r} is declared under 'signatures'",
            )
        return {**data, "allowed_at": normalised}


def _check(data: Any, source: str) -> tuple[Framework | None, list[FrameworkError]]:
    checker = _Checker(source)
    framework = checker.check(data)
    if checker.errors:
        return None, checker.errors
    return framework, []


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def validate_framework_data(data: dict[str, Any], source: str = "<data>") -> list[FrameworkError]:
    """Check already-parsed framework data.

    :param data: the mapping read from a framework file.
    :param source: where the data came from (kept for messages).
    :returns: every problem found; an empty list means the data is a valid framework.
    """
    return _check(data, source)[1]


def load_framework(path: str | Path) -> Framework:
    """Read, validate and build a framework from a YAML file.

    :param path: the framework file.
    :raises FrameworkInvalid: listing every problem found (YAML syntax, structure, rules).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FrameworkInvalid(
            [FrameworkError("<file>", f"there is no file at {path}")], str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FrameworkInvalid(
            [FrameworkError("<file>", f"the file cannot be read ({exc})")], str(path)
        ) from None
    data, errors = _read_yaml(text)
    if data is None and not errors:
        errors = [FrameworkError("<yaml>", "the file is empty")]
    if data is not None:
        framework, more = _check(data, str(path))
        errors = errors + more
        if not errors and framework is not None:
            return framework
    raise FrameworkInvalid(errors, str(path))


def available_frameworks() -> list[str]:
    """Names of the bundled frameworks (``state_machines/frameworks/*.yaml``), sorted."""
    return sorted(p.stem for p in FRAMEWORKS_DIR.glob("*.yaml"))


@functools.cache
def get_framework(name: str) -> Framework:
    """Load a bundled framework by name, once per process.

    :param name: e.g. ``"iqpf"``.
    :raises KeyError: if no bundled framework has that name.
    :raises FrameworkInvalid: if the bundled file has problems.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise KeyError(f"{name!r} is not a framework name")
    path = FRAMEWORKS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(
            f"There is no framework called {name!r} "
            f"(available: {', '.join(available_frameworks())})"
        )
    framework = load_framework(path)
    if framework.name != name:
        raise FrameworkInvalid(
            [
                FrameworkError(
                    "framework",
                    f"the file {path.name} says 'framework: {framework.name}'; "
                    f"it must say 'framework: {name}'",
                )
            ],
            str(path),
        )
    return framework
