"""A small, bounded cache of rendered page fragments that every person with the same view
shares (docs/decisions/0037).

The register's tables and counts cost most of the home page and Units, and they are the
same for everyone who sees the whole organisation. A fragment is kept under a key made of:

* the data version: the newest audit event id (every change to units, cases and levels is
  audited, and audit appends are serialised in commit order, decision 0002), plus the
  newest level change, unit and case ids (writes that bypass the services, as test
  fixtures do, still move these);
* the day in Europe/London (the fragments say "since Nov 2026 (3 months)", which changes
  only with the London date);
* the scope of what the person may see: the whole organisation, or their own units;
* the fragment's name and arguments (page number, caption).

Each request reads the data version once (one indexed query), so every gunicorn worker
notices a change made by another at its next request. The cache lives on the app (one per
worker process) and holds at most ``MAX_FRAGMENTS`` entries, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, render_template
from markupsafe import Markup

from workflow_app.clock import to_london
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import EscalationCase, LevelChange
from workflow_app.models.org import Person, Unit

#: Entries kept per worker process: a few pages of each fragment for each scope.
MAX_FRAGMENTS = 256

_VERSION = sa.select(
    sa.select(sa.func.max(AuditEvent.id)).scalar_subquery(),
    sa.select(sa.func.max(LevelChange.id)).scalar_subquery(),
    sa.select(sa.func.max(Unit.id)).scalar_subquery(),
    sa.select(sa.func.max(EscalationCase.id)).scalar_subquery(),
)


class FragmentCache:
    """A thread-safe LRU mapping of keys to rendered HTML (or small computed values)."""

    def __init__(self, maxsize: int = MAX_FRAGMENTS) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._version: tuple | None = None

    def at_version(self, version: tuple) -> None:
        """Forget everything once the data has moved on: no later request can ask for an
        older version's fragments, so they would only take room until pushed out."""
        with self._lock:
            if self._version is not None and version > self._version:
                self._items.clear()
            if self._version is None or version > self._version:
                self._version = version

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def fragment_cache() -> FragmentCache:
    """This app's cache (created on first use)."""
    cache = current_app.extensions.get("escalate_fragments")
    if cache is None:
        cache = current_app.extensions.setdefault("escalate_fragments", FragmentCache())
    return cache


def data_version() -> tuple:
    """The version of the data the fragments show, read once per request."""
    version = g.get("_fragment_version")
    if version is None:
        row = db.session.execute(_VERSION).one()
        version = g._fragment_version = tuple(-1 if value is None else value for value in row)
        fragment_cache().at_version(version)
    return version


def scope_of(person: Person) -> Hashable:
    """Whose view a fragment is: everyone who sees the whole organisation shares one."""
    return "organisation" if person.sees_whole_organisation else ("person", person.id)


def cached(
    person: Person,
    now: datetime,
    name: str,
    make: Callable[[], Any],
    *args: Hashable,
    own: bool = False,
    minute: bool = False,
) -> Any:
    """The fragment ``name`` for ``person`` at ``now``: from the cache, or made by
    ``make()`` (:func:`render_fragment`, or a small value) and kept.

    ``own`` fragments belong to the person alone and change with the minute (what they may
    sign depends on their roles and on delegations that start and end at any time);
    ``minute`` fragments are shared but change with the minute (what is overdue, which
    meetings are ahead).
    """
    by_minute = own or minute
    when = now.replace(second=0, microsecond=0) if by_minute else to_london(now).date()
    scope = ("own", person.id) if own else scope_of(person)
    key = (name, scope, data_version(), when, *args)
    cache = fragment_cache()
    value = cache.get(key)
    if value is None:
        value = make()
        cache.put(key, value)
    return value


def render_fragment(template: str, **context: Any) -> Markup:
    """A template rendered for inclusion in a page with ``{{ fragment }}``."""
    # Safe: Jinja has already escaped every value in it (autoescape is on for .html).
    return Markup(render_template(template, **context))  # noqa: S704
