"""Rendering letter templates (the top-level ``letters/`` folder) to HTML.

Letters render in Jinja's *immutable sandbox* with autoescape on and ``StrictUndefined``
(DESIGN.md principle 7). Text people type (reasons, meeting references, names) reaches a
template only as data in the context, so it is escaped and never evaluated as a template.

The sandbox is not a full defence (RELIABILITY-ANCHORS.md section 5), so on top of it:

* every template in the folder is compiled once, on first use, and a folder with a broken
  template or a framework letter kind without a template is refused as a whole
  (:meth:`LetterRenderer.validate`);
* a kind must be a plain name (``escalation_2a``) with its own template; names starting with
  ``_`` are layouts and partials, never letters;
* the context must be plain data (strings, numbers, lists, dicts): never ORM objects;
* output is capped at :data:`MAX_OUTPUT_CHARS` characters and rendering at
  :data:`MAX_RENDER_SECONDS` seconds of wall-clock time, both checked while the template
  streams its output, so a runaway template stops early; ``*`` and ``**`` in templates are
  intercepted so ``'x' * 10**9`` cannot allocate a huge string in one step.

:func:`letter_context` turns a :class:`~workflow_app.models.cases.Decision` into that plain
data.
"""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workflow_app.clock import to_london, utcnow

#: The folder of letter templates, one ``<kind>.html`` per letter kind.
LETTERS_DIR = Path(__file__).resolve().parents[2] / "letters"
#: Largest letter, in characters of HTML (about 1 MB). A real letter is 10-30 kB.
MAX_OUTPUT_CHARS = 1_000_000
#: Longest a letter may take to render, wall-clock. A real letter takes a few milliseconds.
MAX_RENDER_SECONDS = 2.0
#: Kinds that are not named in any framework file but are issued all the same.
EXTRA_KINDS = ("chair_letter",)

KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PLAIN_SCALARS = (str, int, float, bool, type(None))


class LetterError(Exception):
    """Base class of the letter rendering errors."""


class UnknownLetterKind(LetterError, ValueError):
    """The kind names no letter template."""


class LetterTemplateInvalid(LetterError):
    """A template in the folder does not compile, or a framework letter has no template."""


class LetterTooLarge(LetterError):
    """Rendering produced more than :data:`MAX_OUTPUT_CHARS` characters."""


class LetterRenderTimeout(LetterError):
    """Rendering took longer than :data:`MAX_RENDER_SECONDS`."""


class LetterRenderFailed(LetterError):
    """The template failed while rendering (e.g. a division by zero or a bad filter
    argument); the original error is chained."""


class LetterSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` checked so no single step of a template
    can build an enormous string or number."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise SecurityError("exponent too large in a letter template")
            return operator.pow(left, right)
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(count, int)
                and len(seq) * count > MAX_OUTPUT_CHARS
            ):
                raise SecurityError("repetition too large in a letter template")
        return operator.mul(left, right)


def framework_letter_kinds() -> set[str]:
    """Every letter kind the bundled framework files name, plus :data:`EXTRA_KINDS`."""
    from state_machines import get_framework
    from state_machines.framework import available_frameworks

    kinds: set[str] = set(EXTRA_KINDS)
    for name in available_frameworks():
        framework = get_framework(name)
        consequences = framework.consequences or {}
        for spec in (consequences.get("on_enter") or {}).values():
            if spec.get("letter"):
                kinds.add(spec["letter"])
        for group in ("on_escalation", "on_deescalation"):
            letter = (consequences.get(group) or {}).get("letter")
            if letter:
                kinds.add(letter)
        kinds.update((framework.formal_notifications or {}).get("kinds", ()))
    return kinds


class LetterRenderer:
    """Renders the letters of one template folder in the sandbox.

    :param template_dir: the folder; tests pass a throwaway one.
    :param required_kinds: kinds that must have a template (checked by :meth:`validate`).
    """

    def __init__(self, template_dir: Path | str, required_kinds: set[str] | None = None):
        self.template_dir = Path(template_dir)
        self.required_kinds = set(required_kinds or ())
        self.environment = LetterSandbox(
            loader=FileSystemLoader(self.template_dir),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self._validated = False

    @property
    def kinds(self) -> list[str]:
        """The letter kinds this folder can render (``<kind>.html``, not starting ``_``)."""
        return sorted(
            path.stem
            for path in self.template_dir.glob("*.html")
            if not path.name.startswith("_") and KIND_RE.match(path.stem)
        )

    def validate(self) -> None:
        """Compile every template and check each required kind has one.

        :raises LetterTemplateInvalid: naming every broken template or missing kind.
        """
        problems = []
        for path in sorted(self.template_dir.glob("*.html")):
            try:
                self.environment.get_template(path.name)
            except TemplateError as error:
                problems.append(f"{path.name}: {error}")
        missing = sorted(self.required_kinds - set(self.kinds))
        if missing:
            problems.append(f"no template for letter kind(s): {', '.join(missing)}")
        if problems:
            raise LetterTemplateInvalid(
                f"letter templates in {self.template_dir} are not usable: " + "; ".join(problems)
            )
        self._validated = True

    def render(self, kind: str, context: Mapping[str, Any]) -> str:
        """Render the letter ``kind`` with ``context`` (plain data) to HTML.

        :raises UnknownLetterKind: for a kind with no template.
        :raises LetterTooLarge, LetterRenderTimeout: past the limits.
        :raises LetterRenderFailed: the template's own expressions failed (e.g. ``1/0``).
        :raises jinja2.exceptions.SecurityError: when the template reaches for something unsafe.
        """
        if not self._validated:
            self.validate()
        if not isinstance(kind, str) or not KIND_RE.match(kind) or kind not in self.kinds:
            raise UnknownLetterKind(
                f"unknown letter kind {kind!r}; known kinds: {', '.join(self.kinds)}"
            )
        check_plain(context)
        template = self.environment.get_template(f"{kind}.html")
        started = time.monotonic()
        parts: list[str] = []
        size = 0
        try:
            for chunk in template.generate(dict(context)):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise LetterTooLarge(
                        f"letter {kind!r} is larger than {MAX_OUTPUT_CHARS} characters"
                    )
                if time.monotonic() - started > MAX_RENDER_SECONDS:
                    raise LetterRenderTimeout(
                        f"letter {kind!r} took longer than {MAX_RENDER_SECONDS} s to render"
                    )
                parts.append(chunk)
        except (LetterError, TemplateError):
            raise  # the defined errors (SecurityError and UndefinedError are TemplateErrors)
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as error:
            # Only the few errors a template's own expressions can raise become a
            # LetterRenderFailed; anything else (a bug, MemoryError) propagates as itself.
            raise LetterRenderFailed(
                f"letter {kind!r} could not be rendered: {type(error).__name__}: {error}"
            ) from error
        return "".join(parts)


@lru_cache(maxsize=1)
def default_renderer() -> LetterRenderer:
    """The renderer of the top-level ``letters/`` folder (validated on first use)."""
    renderer = LetterRenderer(LETTERS_DIR, framework_letter_kinds())
    renderer.validate()
    return renderer


def render_letter(kind: str, context: Mapping[str, Any]) -> str:
    """Render the letter ``kind`` from ``letters/<kind>.html`` with ``context`` to HTML."""
    return default_renderer().render(kind, context)


def check_plain(value: Any, path: str = "context") -> None:
    """Refuse anything but plain data (so no ORM object or callable reaches a template).

    :raises TypeError: naming where the offending value is.
    """
    if isinstance(value, _PLAIN_SCALARS):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a non-text key {key!r}")
            check_plain(item, f"{path}.{key}")
        return
    raise TypeError(
        f"{path} is a {type(value).__name__}; letter contexts hold plain data only "
        "(text, numbers, lists, dicts)"
    )


# --------------------------------------------------------------------------------------------
# Formatting helpers (all output is text in Europe/London)
# --------------------------------------------------------------------------------------------


def format_date(value: date | datetime | None) -> str:
    """``14 November 2026``; datetimes are shown on their Europe/London date."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_london(value)
    return f"{value.day} {value:%B %Y}"


def format_datetime(value: datetime | None) -> str:
    """``14 November 2026 at 11:30 GMT`` in Europe/London."""
    if value is None:
        return ""
    local = to_london(value)
    return f"{format_date(local)} at {local:%H:%M} {local:%Z}"


def format_month(value: str | date | None) -> str:
    """``2026-10`` or ``2026-10-01`` -> ``October 2026``; anything else is returned as text."""
    if value is None:
        return ""
    if isinstance(value, date):
        return f"{value:%B %Y}"
    match = re.match(r"^(\d{4})-(\d{2})", str(value))
    if match:
        return f"{date(int(match[1]), int(match[2]), 1):%B %Y}"
    return str(value)


def format_number(value: Any) -> str:
    """Numbers without a trailing ``.0``; anything else as text."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def humanise(key: str) -> str:
    """``executive_committee_update`` -> ``Executive committee update``."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_SMALL_WORDS = {"and", "of", "the", "to", "for", "on", "in"}


def title_words(key: str) -> str:
    """``delivery_and_performance_committee`` -> ``Delivery and Performance Committee``."""
    words = str(key).replace("_", " ").split()
    return " ".join(
        w if (i and w in _SMALL_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )


def _domain_names(codes: list[str]) -> dict[str, str]:
    """Domain titles by code from the database ("Access & Activity"), when there is one."""
    try:
        import sqlalchemy as sa
        from flask import has_app_context

        from workflow_app.extensions import db
        from workflow_app.models.org import Domain

        if not codes or not has_app_context():
            return {}
        rows = db.session.execute(sa.select(Domain.code, Domain.name).where(Domain.code.in_(codes)))
        return {code: name for code, name in rows}
    except Exception:  # noqa: BLE001 - a letter never fails for want of a nicer title
        return {}


def _plainify(value: Any) -> Any:
    """Dates become text, tuples lists; used on ``extra`` so callers may pass dates."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Mapping):
        return {str(k): _plainify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plainify(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Building the context from a decision
# --------------------------------------------------------------------------------------------


def _person(person, role: str = "") -> dict[str, str] | None:
    if person is None:
        return None
    return {
        "name": person.name,
        "job_title": person.job_title or "",
        "email": person.email,
        "role": role,
    }


def _evidence_document(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except (TypeError, ValueError):
        return {"text": str(raw)}
    return document if isinstance(document, dict) else {"items": document}


def _measure_highlight(item: Mapping[str, Any]) -> dict[str, Any]:
    """One measure of the evidence as plain text fields, whatever shape the evidence has
    (the monthly review's ``months`` list, or the demo's ``from``/``to``/``latest_value``)."""
    months = []
    for month in item.get("months") or []:
        if isinstance(month, Mapping):
            months.append(
                {
                    "month": format_month(month.get("period")),
                    "actual": format_number(month.get("actual")),
                    "trajectory": format_number(month.get("trajectory")),
                }
            )
    if not months and (item.get("from") or item.get("to")):
        span = format_month(item.get("from"))
        if item.get("to") and item.get("to") != item.get("from"):
            span = f"{span} to {format_month(item.get('to'))}"
        months.append(
            {
                "month": span,
                "actual": format_number(item.get("latest_value", item.get("value"))),
                "trajectory": format_number(item.get("trajectory")),
            }
        )
    detail = []
    if item.get("months_missed"):
        detail.append(f"missed for {item['months_missed']} consecutive months")
    if item.get("sentence"):
        detail.append(str(item["sentence"]))
    return {
        "code": str(item.get("code") or item.get("measure") or ""),
        "name": str(item.get("name") or item.get("measure") or item.get("code") or "Measure"),
        "domain": str(item.get("domain") or ""),
        "target": format_number(item.get("target")) if item.get("target") is not None else "",
        "unit_of_measure": str(item.get("unit_of_measure") or ""),
        "detail": "; ".join(detail),
        "months": months,
    }


def evidence_highlights(raw: str | None) -> dict[str, Any]:
    """The decision's evidence JSON reduced to what a letter shows: the sentences of the
    rule that fired, the measures with their months and values, and the domains."""
    document = _evidence_document(raw)
    sentences: list[str] = []
    measures: list[dict[str, Any]] = []
    domains: list[str] = []
    seen: set[str] = set()

    def add_measures(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, Mapping):
                continue
            highlight = _measure_highlight(item)
            key = highlight["code"] or highlight["name"]
            if key in seen:
                continue
            seen.add(key)
            measures.append(highlight)
            if highlight["domain"] and highlight["domain"] not in domains:
                domains.append(highlight["domain"])

    for signal in document.get("signals") or []:
        if not isinstance(signal, Mapping):
            continue
        if signal.get("sentence"):
            sentences.append(str(signal["sentence"]))
        add_measures(signal.get("measures"))
        for domain in signal.get("domains") or []:
            if str(domain) not in domains:
                domains.append(str(domain))
    add_measures(document.get("measures"))
    if document.get("text"):
        sentences.append(str(document["text"]))
    names = _domain_names(domains)
    for measure in measures:
        if measure["domain"]:
            measure["domain"] = names.get(measure["domain"], humanise(measure["domain"]))
    domains = [names.get(code, humanise(code)) for code in domains]
    rule = document.get("rule") if isinstance(document.get("rule"), Mapping) else {}
    return {
        "rule": str(rule.get("title") or ""),
        "rule_source": str(rule.get("source") or ""),
        "period": format_month(document.get("period")),
        "sentences": sentences,
        "measures": measures,
        "domains": domains,
    }


def _signature_block(signature, decision, role_titles: Mapping[str, str]) -> dict[str, Any]:
    role_title = role_titles.get(signature.role, humanise(signature.role))
    meaning = (signature.meaning or "signed").strip()
    statement = meaning[:1].upper() + meaning[1:]
    meeting = (decision.meeting_reference or "").strip()
    if meeting and meeting.lower() not in statement.lower():
        statement = f"{statement} at {meeting}"
    on_behalf_of = signature.on_behalf_of.name if signature.on_behalf_of is not None else None
    return {
        "name": signature.person.name,
        "job_title": signature.person.job_title or "",
        "role": signature.role,
        "role_title": role_title,
        "signed_at": format_datetime(signature.signed_at),
        "meaning": statement,
        "on_behalf_of": on_behalf_of,
        "case_version": getattr(signature, "case_version", None),
        "payload_sha256": getattr(signature, "payload_sha256", None) or "",
        "delegation": (
            f"Signed by {signature.person.name} as delegate of {on_behalf_of}"
            if on_behalf_of
            else ""
        ),
    }


def _organisation_name(explicit: str | None) -> str:
    if explicit:
        return explicit
    from flask import current_app, has_app_context

    if has_app_context():
        return str(current_app.config.get("ORGANISATION_NAME") or "")
    return ""


def letter_context(
    decision,
    *,
    case=None,
    response_due_at: date | datetime | None = None,
    extra: Mapping[str, Any] | None = None,
    organisation_name: str | None = None,
    issued_at: datetime | None = None,
    issued_by=None,
    reference: str = "",
) -> dict[str, Any]:
    """The plain-data context of a letter about ``decision`` (or, with ``decision=None``, about
    ``case`` alone, e.g. a chair's letter after a review).

    Keys: ``organisation``, ``date``, ``reference``, ``framework``, ``unit``, ``addressee``
    (the unit lead), ``copied_to`` (accountable executive and budget holder), ``case`` (track
    and levels with titles), ``decision``, ``reasons`` (paragraphs), ``evidence``
    (:func:`evidence_highlights`), ``areas_of_concern``, ``monitoring`` (text and cadence),
    ``report_to``, ``response`` (``due_date``), ``signatures``, ``issued_by``, ``reissue``;
    then ``extra`` (dates in it become text) is laid over the top.
    """
    from state_machines import get_framework
    from workflow_app.models.roles import ROLE_TITLES

    if case is None:
        if decision is None:
            raise ValueError("letter_context needs a decision or a case")
        case = decision.case
    framework = get_framework(case.framework)
    unit = case.unit
    track = framework.track_for(case.track)
    track_title = track.title
    if track.per_measure and ":" in case.track:
        track_title = f"{track.title} ({case.track.partition(':')[2]})"

    def level(level_id: str | None) -> dict[str, Any]:
        if not level_id:
            return {"id": "", "title": "", "description": "", "monitoring": "", "cadence": []}
        spec = framework.levels.get(level_id)
        if spec is None:
            return {"id": level_id, "title": level_id, "description": "", "monitoring": ""}
        cadence = []
        for key, every in (spec.cadence or {}).items():
            if isinstance(every, list | tuple):
                every = " or ".join(str(e) for e in every)
            cadence.append(f"{humanise(key)}: every {every}")
        return {
            "id": spec.id,
            "title": spec.title,
            "description": spec.description,
            "monitoring": spec.monitoring,
            "cadence": cadence,
        }

    from_level = level(decision.from_level if decision is not None else None)
    to_level = level(decision.to_level if decision is not None else case.level)
    consequences: dict[str, Any] = {}
    if decision is not None:
        transition = framework.transition(case.track, decision.from_level, decision.to_level)
        if transition is not None:
            consequences = framework.consequences_for(transition) or {}

    evidence = evidence_highlights(decision.evidence if decision is not None else None)
    reason = (decision.reason if decision is not None else "") or ""
    reasons = [p.strip() for p in re.split(r"\n\s*\n", reason) if p.strip()]
    role_titles = {**ROLE_TITLES, **framework.decider_roles}
    signatures = (
        [_signature_block(s, decision, role_titles) for s in decision.signatures]
        if decision is not None
        else []
    )
    monitoring_text = to_level["monitoring"] or to_level["description"]

    context: dict[str, Any] = {
        "organisation": {"name": _organisation_name(organisation_name)},
        "date": format_date(issued_at or utcnow()),
        "reference": reference,
        "framework": {
            "name": framework.name,
            "title": framework.title,
            "source": framework.source,
        },
        "unit": {"code": unit.code, "name": unit.name, "kind": unit.kind_title},
        "addressee": _person(unit.lead, "Lead"),
        "copied_to": [
            p
            for p in (
                _person(unit.accountable_executive, "Accountable executive"),
                _person(unit.budget_holder, "Budget holder"),
            )
            if p is not None and (unit.lead is None or p["email"] != unit.lead.email)
        ],
        "case": {
            "track": case.track,
            "track_title": track_title,
            "from_level": from_level,
            "to_level": to_level,
        },
        "decision": {
            "id": decision.id if decision is not None else None,
            "kind": decision.kind if decision is not None else "",
            "meeting_reference": (decision.meeting_reference or "") if decision else "",
            "decided_at": format_datetime(decision.decided_at) if decision is not None else "",
            "period": format_month(decision.period) if decision is not None else "",
        },
        "reasons": reasons,
        "evidence": evidence,
        "areas_of_concern": list(evidence["domains"]),
        "monitoring": {"text": monitoring_text, "cadence": to_level.get("cadence", [])},
        "report_to": [title_words(r) for r in consequences.get("report_to", [])],
        "deadlines": [
            {"kind": humanise(d.get("kind", "")), "within": str(d.get("in", ""))}
            for d in consequences.get("deadlines", [])
        ],
        "response": {"due_date": format_date(response_due_at)},
        "signatures": signatures,
        "issued_by": _person(issued_by),
        "reissue": None,
    }
    if extra:
        context.update(_plainify(dict(extra)))
    check_plain(context)
    return context
