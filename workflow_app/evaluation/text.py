"""Formatting helpers for evidence sentences a director can read.

Money is shown in pounds with thousands separators (``£742,310``), percentages without
needless decimals (``81%``, ``78.5%``), months as ``Aug`` within one year or ``Aug 2026``
across years, and lists joined in plain English (``A, B and C``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import date

__all__ = [
    "join_words",
    "month_label",
    "month_name",
    "money",
    "months_phrase",
    "number",
    "plural",
    "value_with_unit",
    "values_by_month",
]


def number(value: float, decimals: int = 1) -> str:
    """``81`` for whole numbers, ``78.5`` otherwise (at most ``decimals`` places), with
    thousands separators (``1,234``)."""
    rounded = round(float(value), decimals)
    if rounded == int(rounded):
        return f"{int(rounded):,}"
    text = f"{rounded:,.{decimals}f}".rstrip("0").rstrip(".")
    return text


def money(value: float) -> str:
    """``£742,310``; pence only when present (``£500,000.01``); ``-£1,200`` for negatives."""
    sign = "-" if value < 0 else ""
    amount = abs(float(value))
    pounds = round(amount, 2)
    if pounds == int(pounds):
        return f"{sign}£{int(pounds):,}"
    return f"{sign}£{pounds:,.2f}"


def value_with_unit(value: float, unit_of_measure: str) -> str:
    """A measure value with its unit: ``81%``, ``7.5 days``, ``£1,200``, ``42``."""
    if unit_of_measure == "percent":
        return f"{number(value)}%"
    if unit_of_measure == "gbp":
        return money(value)
    if unit_of_measure in ("days", "weeks", "minutes"):
        word = unit_of_measure if number(value) != "1" else unit_of_measure[:-1]
        return f"{number(value)} {word}"
    if unit_of_measure == "ratio":
        return number(value, 2)
    return number(value)


def month_name(period: date, reference: date | None = None) -> str:
    """Full month name, with the year unless it is ``reference``'s year: ``July``,
    ``July 2025``."""
    name = calendar.month_name[period.month]
    if reference is not None and reference.year == period.year:
        return name
    return f"{name} {period.year}"


def month_label(period: date, with_year: bool = False) -> str:
    """Short month: ``Aug`` or ``Aug 2026``."""
    label = calendar.month_abbr[period.month]
    return f"{label} {period.year}" if with_year else label


def _needs_year(periods: Sequence[date], reference: date | None) -> bool:
    years = {p.year for p in periods}
    if reference is not None:
        years.add(reference.year)
    return len(years) > 1


def months_phrase(periods: Sequence[date], reference: date | None = None) -> str:
    """``Aug, Sep and Oct`` (years added when the months span more than one year or differ
    from ``reference``'s year)."""
    with_year = _needs_year(periods, reference)
    return join_words(month_label(p, with_year) for p in periods)


def values_by_month(
    items: Sequence[tuple[date, float]], unit_of_measure: str, reference: date | None = None
) -> str:
    """``Aug 81%, Sep 79%, Oct 78%``."""
    with_year = _needs_year([p for p, _ in items], reference)
    return ", ".join(
        f"{month_label(p, with_year)} {value_with_unit(v, unit_of_measure)}" for p, v in items
    )


def join_words(items: Iterable[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    words = list(items)
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 month``, ``3 months``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"
