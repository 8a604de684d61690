"""Server-side SVG charts for measure pages: no JavaScript, no inline styles.

Pages are served under ``default-src 'self'; style-src 'self'``, so every chart is inline SVG
drawn with presentation attributes only (``fill``, ``stroke``, ``stroke-dasharray``,
``font-size`` ...): never a ``style`` attribute or a ``<style>`` element. Markup is built with
:mod:`xml.etree.ElementTree`, so every text that comes from data (titles, units, labels) is
escaped on serialisation.

* :func:`measure_chart` - a monthly measure against its target, trajectory and SPC limits, with
  special-cause markers, an optional RAG strip and a legend. Accessible: ``role="img"`` and
  ``aria-labelledby`` naming a ``<title>`` and a ``<desc>`` (the text from
  :func:`description_of`).
* :func:`description_of` - the text alternative: latest value, target, months meeting it, trend,
  trajectory and special cause.
* :func:`sparkline` - a tiny trend line for table cells.
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET  # noqa: S405 - building markup, never parsing it
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = [
    "ChartBands",
    "SeriesPoint",
    "description_of",
    "format_value",
    "measure_chart",
    "sparkline",
]

HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"

# NHS identity colours (https://service-manual.nhs.uk/design-system/styles/colour) and the
# Making Data Count SPC palette.
NHS_BLUE = "#005eb8"
NHS_GREEN = "#007f3b"
NHS_DARK_GREY = "#4c6272"
NHS_MID_GREY = "#768692"
NHS_GREY_3 = "#aeb7bd"
NHS_GREY_4 = "#d8dde0"
NHS_GREY_5 = "#e8edee"
NHS_TEXT = "#212b32"
NHS_WHITE = "#ffffff"
SPC_IMPROVEMENT = "#41b6e6"
SPC_CONCERN = "#ed8b00"
SPC_COMMON = NHS_MID_GREY
RAG_COLOURS = {"green": NHS_GREEN, "amber": "#ffb81c", "red": "#d5281b"}
RAG_NONE = NHS_GREY_3

FONT_FAMILY = "Frutiger W01, Arial, Helvetica, sans-serif"
FONT_SIZE = 12
SVG_NS = "http://www.w3.org/2000/svg"

MAX_VALUE = 1e15
_DECIMAL_CONTEXT = Context(prec=400)  # enough digits for any finite float

# Characters XML 1.0 does not allow at all; stripped from data text so the output always parses.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class SeriesPoint:
    """One month of a measure. ``period`` is any date in the month (normally the 1st)."""

    period: date
    actual: float | None
    trajectory: float | None


@dataclass(frozen=True)
class ChartBands:
    """SPC process limits (XmR chart): the mean and upper/lower process limits."""

    mean: float | None = None
    ucl: float | None = None
    lcl: float | None = None


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def _clean(text: object) -> str:
    return _INVALID_XML.sub("", str(text))


def _trim(number: str) -> str:
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return "0" if number in ("-0", "") else number


def _auto_decimals(value: float) -> int:
    if float(value).is_integer() or abs(value) >= 1000:
        return 0
    return 1 if abs(value) >= 10 else 2


def format_value(value: float, unit_label: str = "", *, decimals: int | None = None) -> str:
    """``92%``, ``£1,234,567``, ``-£12``, ``4.5 days``; trailing zeros dropped when automatic."""
    unit = (unit_label or "").strip()
    places = _auto_decimals(value) if decimals is None else decimals
    rounded = Decimal(repr(abs(float(value)))).quantize(
        Decimal(1).scaleb(-places), ROUND_HALF_UP, _DECIMAL_CONTEXT
    )
    number = f"{rounded:,.{places}f}"
    if decimals is None:
        number = _trim(number)
    sign = "-" if value < 0 and number.strip("0.,") else ""
    if unit == "£":
        return f"{sign}£{number}"
    if unit == "%":
        return f"{sign}{number}%"
    if not unit:
        return f"{sign}{number}"
    return f"{sign}{number} {unit}"


def _tick_label(value: float, unit_label: str, decimals: int) -> str:
    unit = (unit_label or "").strip()
    # Other units go in an axis caption, not on every tick.
    return format_value(value, unit if unit in ("%", "£") else "", decimals=decimals)


def _month_short(period: date) -> str:
    return period.strftime("%b %y")  # "Oct 26"


def _month_long(period: date) -> str:
    return period.strftime("%B %Y")  # "October 2026"


def _month_index(period: date) -> int:
    return period.year * 12 + period.month - 1


def _fmt(number: float) -> str:
    """A coordinate for an attribute."""
    return _trim(f"{number:.1f}")


def _text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """Rough rendered width of ``text`` (Arial-ish average advance)."""
    return len(text) * font_size * 0.58


# ---------------------------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------------------------


def _nice_ticks(lo: float, hi: float, *, min_ticks: int = 4, max_ticks: int = 6) -> list[float]:
    """Between ``min_ticks`` and ``max_ticks`` round values spanning ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if lo > hi:
        lo, hi = hi, lo
    if hi - lo < 1e-6:
        pad = abs(hi) * 0.1 if abs(hi) >= 1e-5 else 1.0
        lo, hi = lo - pad, hi + pad
    span = hi - lo
    magnitude = 10 ** math.floor(math.log10(span / max_ticks))
    for multiplier in (1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        step = multiplier * magnitude
        first = math.floor(lo / step + 1e-9)
        last = math.ceil(hi / step - 1e-9)
        if last - first + 1 <= max_ticks:
            break
    while last - first + 1 < min_ticks:
        # Grow away from zero-crossing data symmetrically-ish; prefer extending the top.
        if (last - first) % 2:
            first -= 1
        else:
            last += 1
    return [round(i * step, 10) for i in range(first, last + 1)]


def _padded_range(lo: float, hi: float) -> tuple[float, float]:
    """The data range widened so points sit off the frame and small wobbles are not magnified.

    The span is at least 5% of the largest magnitude; non-negative data never gets a negative
    axis, and is anchored at zero when it comes close to it.
    """
    non_negative = lo >= 0
    if non_negative and hi == 0:
        return 0.0, 1.0
    min_span = max(abs(lo), abs(hi)) * 0.05
    if hi - lo < min_span:
        middle = (lo + hi) / 2
        lo, hi = middle - min_span / 2, middle + min_span / 2
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    if non_negative and (lo < 0 or lo <= (hi - lo) * 0.5):
        lo = 0.0
    return lo, hi


def _tick_decimals(ticks: Sequence[float]) -> int:
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0])
    for places in range(0, 6):
        if all(abs(round(t, places) - t) < 1e-9 for t in ticks) and step >= 10**-places - 1e-9:
            return places
    return 6


def _finite(values: Iterable[float | None]) -> list[float]:
    return [v for v in map(_number, values) if v is not None]


# ---------------------------------------------------------------------------------------------
# Normalising input
# ---------------------------------------------------------------------------------------------


def _series(points: Sequence[SeriesPoint]) -> list[SeriesPoint]:
    """Points in month order, one per month (the last given wins), non-finite values dropped."""
    by_month: dict[int, SeriesPoint] = {}
    for point in points:
        by_month[_month_index(point.period)] = SeriesPoint(
            period=point.period,
            actual=_number(point.actual),
            trajectory=_number(point.trajectory),
        )
    return [by_month[key] for key in sorted(by_month)]


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    # Beyond any real measure (and beyond what the axis arithmetic can scale): treat as missing.
    return value if math.isfinite(value) and abs(value) <= MAX_VALUE else None


def _by_month(mapping: dict[date, str | None] | None) -> dict[int, str | None]:
    if not mapping:
        return {}
    return {_month_index(period): value for period, value in mapping.items()}


def _special(kind: str | None) -> str | None:
    kind = (kind or "").strip().lower()
    return kind if kind in ("improvement", "concern") else None


def _rag_colour(status: str | None) -> str:
    status = (status or "").strip().lower()
    status = {"g": "green", "a": "amber", "r": "red"}.get(status, status)
    return RAG_COLOURS.get(status, RAG_NONE)


def _met(value: float, target: float, direction: str) -> bool:
    return value <= target if direction == LOWER_IS_BETTER else value >= target


# ---------------------------------------------------------------------------------------------
# Text alternative
# ---------------------------------------------------------------------------------------------

TARGET_WINDOW = 6


def description_of(
    *,
    title: str,
    unit_label: str,
    points: Sequence[SeriesPoint],
    target: float | None,
    direction: str,
    bands: ChartBands | None = None,
    special_cause: dict[date, str] | None = None,
) -> str:
    """A few sentences describing the chart for people who cannot see it."""
    title = _clean(title).strip() or "This measure"
    series = _series(points)
    target = _number(target)
    if bands is not None:
        bands = ChartBands(_number(bands.mean), _number(bands.ucl), _number(bands.lcl))
    actuals = [p for p in series if p.actual is not None]
    better = "lower" if direction == LOWER_IS_BETTER else "higher"

    def fmt(value: float) -> str:
        return format_value(value, unit_label)

    if not actuals:
        sentences = [f"{title}: no data yet."]
        if target is not None:
            sentences.append(f"The target is {fmt(target)} ({better} is better).")
        return " ".join(sentences)

    latest = actuals[-1]
    latest_text = f"{fmt(latest.actual)} in {_month_long(latest.period)}"
    sentences = [f"{title}: the latest value is {latest_text}."]

    if target is None:
        sentences.append(f"No target is set ({better} is better).")
    else:
        sentences.append(f"The target is {fmt(target)} ({better} is better).")
        window = actuals[-TARGET_WINDOW:]
        met = sum(_met(p.actual, target, direction) for p in window)
        if len(window) == 1:
            verb = "met" if met else "did not meet"
            sentences.append(f"It {verb} its target in the latest month.")
        else:
            sentences.append(f"It met its target in {met} of the last {len(window)} months.")

    trend = _trend_sentence(actuals[-TARGET_WINDOW:], direction, fmt)
    if trend:
        sentences.append(trend)

    if latest.trajectory is not None:
        gap = latest.actual - latest.trajectory
        if abs(gap) < 1e-9:
            position = "on trajectory"
        elif (gap > 0) == (direction != LOWER_IS_BETTER):
            position = "ahead of trajectory"
        else:
            position = "behind trajectory"
        sentences.append(
            f"The trajectory for {_month_long(latest.period)} was {fmt(latest.trajectory)}, "
            f"so it is {position}."
        )

    if bands is not None and any(v is not None for v in (bands.mean, bands.ucl, bands.lcl)):
        parts = []
        if bands.mean is not None:
            parts.append(f"mean {fmt(bands.mean)}")
        if bands.ucl is not None:
            parts.append(f"upper process limit {fmt(bands.ucl)}")
        if bands.lcl is not None:
            parts.append(f"lower process limit {fmt(bands.lcl)}")
        sentences.append("Statistical process control: " + ", ".join(parts) + ".")

    causes = sorted(
        (period, kind)
        for period, raw in (special_cause or {}).items()
        if (kind := _special(raw)) is not None
    )
    if causes:
        listed = "; ".join(f"{kind} in {_month_long(period)}" for period, kind in causes)
        sentences.append(f"Special cause variation: {listed}.")
    elif special_cause is not None or bands is not None:
        sentences.append("There is no special cause variation.")

    return " ".join(sentences)


def _trend_sentence(window: Sequence[SeriesPoint], direction: str, fmt) -> str | None:
    if len(window) < 2:
        return None
    values = [p.actual for p in window]
    n = len(values)
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    denominator = sum((i - mean_x) ** 2 for i in range(n))
    slope = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / denominator
    fitted_change = slope * (n - 1)
    scale = max(max(abs(v) for v in values), max(values) - min(values), 1e-12)
    first, last = window[0], window[-1]
    months = f"the last {n} months"
    if abs(fitted_change) < 0.02 * scale:
        low, high = min(values), max(values)
        if low == high:
            return f"Over {months} it has stayed at {fmt(low)}."
        return f"Over {months} it has been broadly stable, between {fmt(low)} and {fmt(high)}."
    rising = fitted_change > 0
    improving = rising == (direction != LOWER_IS_BETTER)
    verb = "risen" if rising else "fallen"
    judgement = "improving" if improving else "getting worse"
    return (
        f"Over {months} it has {verb} from {fmt(first.actual)} in {_month_long(first.period)} "
        f"to {fmt(last.actual)} in {_month_long(last.period)} ({judgement})."
    )


# ---------------------------------------------------------------------------------------------
# SVG helpers
# ---------------------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): _attr(v) for k, v in attrs.items()}
    )
    if text is not None:
        element.text = _clean(text)
    return element


def _attr(value: object) -> str:
    if isinstance(value, float):
        return _fmt(value)
    return _clean(value)


def _root(width: int, height: int, **attrs: object) -> ET.Element:
    root = ET.Element("svg")
    root.set("xmlns", SVG_NS)
    root.set("width", str(width))
    root.set("height", str(height))
    root.set("viewBox", f"0 0 {width} {height}")
    root.set("role", "img")
    for key, value in attrs.items():
        root.set(key.replace("_", "-"), _attr(value))
    return root


def _serialise(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode", short_empty_elements=True)


def _runs(items: Sequence[tuple[int, float | None]]) -> list[list[tuple[int, float]]]:
    """Split (month index, value) pairs into runs of consecutive months with values."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    previous: int | None = None
    for month, value in items:
        if value is None or (previous is not None and month != previous + 1):
            if current:
                runs.append(current)
            current = []
        if value is not None:
            current.append((month, value))
        previous = month
    if current:
        runs.append(current)
    return runs


def _chart_id(*parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"chart-{digest[:12]}"


# ---------------------------------------------------------------------------------------------
# Measure chart
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LegendItem:
    label: str
    kind: str  # line | dashed | dotted | thin | marker | actual
    colour: str


def measure_chart(
    *,
    title: str,
    unit_label: str,
    points: list[SeriesPoint],
    target: float | None,
    direction: str,
    bands: ChartBands | None = None,
    special_cause: dict[date, str] | None = None,
    rag: dict[date, str | None] | None = None,
    width: int = 640,
    height: int = 280,
) -> str:
    """Inline SVG for a monthly measure: actual, trajectory, target, SPC limits, RAG strip."""
    width = max(int(width), 200)
    height = max(int(height), 120)
    title_text = _clean(title).strip() or "Measure"
    series = _series(points)
    target = _number(target)
    if bands is not None:
        bands = ChartBands(_number(bands.mean), _number(bands.ucl), _number(bands.lcl))
    description = description_of(
        title=title_text,
        unit_label=unit_label,
        points=series,
        target=target,
        direction=direction,
        bands=bands,
        special_cause=special_cause,
    )
    chart_id = _chart_id(
        title_text,
        unit_label,
        [(p.period.isoformat(), p.actual, p.trajectory) for p in series],
        target,
        direction,
        bands,
        sorted((k.isoformat(), str(v)) for k, v in (special_cause or {}).items()),
        sorted((k.isoformat(), str(v)) for k, v in (rag or {}).items()),
        width,
        height,
    )
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    root = _root(
        width,
        height,
        id=chart_id,
        aria_labelledby=f"{title_id} {desc_id}",
        font_family=FONT_FAMILY,
        font_size=FONT_SIZE,
        fill=NHS_TEXT,
        **{"class": "escalate-chart"},
    )
    _el(root, "title", title_text, id=title_id)
    _el(root, "desc", description, id=desc_id)

    if not series:
        _el(
            root,
            "rect",
            x=0.5,
            y=0.5,
            width=width - 1.0,
            height=height - 1.0,
            fill=NHS_WHITE,
            stroke=NHS_GREY_4,
        )
        _el(
            root,
            "text",
            "No data yet",
            x=width / 2,
            y=height / 2,
            text_anchor="middle",
            dominant_baseline="middle",
            fill=NHS_DARK_GREY,
            font_size=14,
        )
        return _serialise(root)

    special = {k: kind for k, v in _by_month(special_cause).items() if (kind := _special(v))}
    rag_by_month = _by_month(rag)
    spc_mode = bands is not None or special_cause is not None
    has_trajectory = any(p.trajectory is not None for p in series)
    has_actual = any(p.actual is not None for p in series)

    # Legend -----------------------------------------------------------------------------------
    legend: list[_LegendItem] = [_LegendItem("Actual", "actual", NHS_BLUE)]
    if has_trajectory:
        legend.append(_LegendItem("Trajectory", "dashed", NHS_DARK_GREY))
    if target is not None:
        legend.append(_LegendItem("Target", "line", NHS_GREEN))
    if bands is not None and bands.mean is not None:
        legend.append(_LegendItem("Mean", "thin", NHS_MID_GREY))
    if bands is not None and (bands.ucl is not None or bands.lcl is not None):
        legend.append(_LegendItem("Process limits", "dotted", NHS_MID_GREY))
    if "improvement" in special.values():
        legend.append(_LegendItem("Special cause: improvement", "marker", SPC_IMPROVEMENT))
    if "concern" in special.values():
        legend.append(_LegendItem("Special cause: concern", "marker", SPC_CONCERN))

    margin_right = 16
    swatch, row_height = 22, 18
    legend_group = _el(root, "g", **{"class": "chart-legend"})
    x, row = 8.0, 0
    placements: list[tuple[_LegendItem, float, int]] = []
    for item in legend:
        item_width = swatch + 5 + _text_width(item.label) + 16
        if x + item_width > width - margin_right and x > 8:
            x, row = 8.0, row + 1
        placements.append((item, x, row))
        x += item_width
    direction_text = "Lower is better ↓" if direction == LOWER_IS_BETTER else "Higher is better ↑"
    if x + _text_width(direction_text, 11) > width - margin_right:
        row += 1
    _el(
        legend_group,
        "text",
        direction_text,
        x=width - margin_right,
        y=12 + row * row_height + 4,
        text_anchor="end",
        fill=NHS_DARK_GREY,
        font_size=11,
    )
    for item, item_x, item_row in placements:
        y = 12 + item_row * row_height
        _legend_swatch(legend_group, item, item_x, y, swatch)
        _el(legend_group, "text", item.label, x=item_x + swatch + 5, y=y + 4)
    legend_rows = row + 1

    # Plot area --------------------------------------------------------------------------------
    values = _finite(
        [p.actual for p in series]
        + [p.trajectory for p in series]
        + [target]
        + ([bands.mean, bands.ucl, bands.lcl] if bands else [])
    )
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo, hi = _padded_range(lo, hi)
    ticks = _nice_ticks(lo, hi)
    decimals = _tick_decimals(ticks)
    tick_labels = [_tick_label(t, unit_label, decimals) for t in ticks]
    unit = (unit_label or "").strip()
    axis_caption = unit if unit and unit not in ("%", "£") else None

    plot_left = max(36.0, max(_text_width(t, 11) for t in tick_labels) + 14)
    plot_right = width - margin_right
    plot_top = legend_rows * row_height + 14 + (14 if axis_caption else 0)
    rag_height = 10 if rag_by_month else 0
    plot_bottom = height - 24 - (rag_height + 6 if rag_height else 0)
    if plot_bottom - plot_top < 40:
        plot_top = max(4.0, plot_bottom - 40)

    y_min, y_max = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return plot_bottom - (value - y_min) / (y_max - y_min) * (plot_bottom - plot_top)

    months = [_month_index(p.period) for p in series]
    first_month, last_month = months[0], months[-1]
    span = last_month - first_month
    inner_pad = 12.0
    slot = (plot_right - plot_left - 2 * inner_pad) / span if span else plot_right - plot_left

    def x_of(month: int) -> float:
        if not span:
            return (plot_left + plot_right) / 2
        return plot_left + inner_pad + (month - first_month) * slot

    # Grid and y axis --------------------------------------------------------------------------
    grid = _el(root, "g", **{"class": "chart-grid"})
    for value, label in zip(ticks, tick_labels, strict=True):
        y = y_of(value)
        is_zero = value == 0 and y_min < 0
        _el(
            grid,
            "line",
            x1=plot_left,
            x2=plot_right,
            y1=y,
            y2=y,
            stroke=NHS_GREY_3 if is_zero else NHS_GREY_5,
            stroke_width=1,
        )
        _el(
            grid,
            "text",
            label,
            x=plot_left - 6,
            y=y,
            dy="0.35em",
            text_anchor="end",
            fill=NHS_DARK_GREY,
            font_size=11,
        )
    if axis_caption:
        _el(
            grid,
            "text",
            axis_caption,
            x=plot_left - 6,
            y=plot_top - 10,
            text_anchor="start",
            fill=NHS_DARK_GREY,
            font_size=11,
        )

    # X axis -----------------------------------------------------------------------------------
    axis = _el(root, "g", **{"class": "chart-x-axis"})
    _el(
        axis,
        "line",
        x1=plot_left,
        x2=plot_right,
        y1=plot_bottom,
        y2=plot_bottom,
        stroke=NHS_GREY_3,
        stroke_width=1,
    )
    label_width = _text_width("Mmm 00", 11) + 10
    all_months = list(range(first_month, last_month + 1))
    capacity = max(1, int((plot_right - plot_left) // label_width))
    needed = math.ceil(len(all_months) / capacity)
    every = next((n for n in (1, 2, 3, 4, 6, 12) if n >= needed), 12 * math.ceil(needed / 12))
    label_y = plot_bottom + (rag_height + 6 if rag_height else 0) + 16
    for offset, month in enumerate(reversed(all_months)):
        if offset % every:
            continue
        x = x_of(month)
        period = date(month // 12, month % 12 + 1, 1)
        _el(axis, "line", x1=x, x2=x, y1=plot_bottom, y2=plot_bottom + 4, stroke=NHS_GREY_3)
        _el(
            axis,
            "text",
            _month_short(period),
            x=x,
            y=label_y,
            text_anchor="middle",
            fill=NHS_DARK_GREY,
            font_size=11,
        )

    # RAG strip --------------------------------------------------------------------------------
    if rag_by_month:
        strip = _el(root, "g", **{"class": "chart-rag"})
        cell = min(24.0, max(3.0, (slot if span else 24.0) * 0.8))
        for month in all_months:
            status = rag_by_month.get(month)
            period = date(month // 12, month % 12 + 1, 1)
            rect = _el(
                strip,
                "rect",
                x=x_of(month) - cell / 2,
                y=plot_bottom + 5,
                width=cell,
                height=rag_height,
                rx=2,
                fill=_rag_colour(status),
            )
            _el(rect, "title", f"{_month_long(period)}: RAG {(status or 'no data')}")

    # SPC mean and limits ----------------------------------------------------------------------
    if bands is not None:
        spc = _el(root, "g", **{"class": "chart-spc"})
        if bands.mean is not None:
            _el(
                spc,
                "line",
                x1=plot_left,
                x2=plot_right,
                y1=y_of(bands.mean),
                y2=y_of(bands.mean),
                stroke=NHS_MID_GREY,
                stroke_width=1,
                **{"class": "chart-mean"},
            )
        for limit in (bands.ucl, bands.lcl):
            if limit is not None:
                _el(
                    spc,
                    "line",
                    x1=plot_left,
                    x2=plot_right,
                    y1=y_of(limit),
                    y2=y_of(limit),
                    stroke=NHS_MID_GREY,
                    stroke_width=1.2,
                    stroke_dasharray="2 3",
                    **{"class": "chart-limit"},
                )

    # Target -----------------------------------------------------------------------------------
    if target is not None:
        group = _el(root, "g", **{"class": "chart-target"})
        ty = y_of(target)
        _el(
            group,
            "line",
            x1=plot_left,
            x2=plot_right,
            y1=ty,
            y2=ty,
            stroke=NHS_GREEN,
            stroke_width=2,
        )

    # Screen coordinates of everything the target label must not cover.
    obstacles: list[list[tuple[float, float]]] = []

    # Trajectory -------------------------------------------------------------------------------
    if has_trajectory:
        group = _el(root, "g", **{"class": "chart-trajectory"})
        for run in _runs([(m, p.trajectory) for m, p in zip(months, series, strict=True)]):
            obstacles.append([(x_of(m), y_of(v)) for m, v in run])
            if len(run) == 1:
                month, value = run[0]
                _el(group, "circle", cx=x_of(month), cy=y_of(value), r=2, fill=NHS_DARK_GREY)
                continue
            _el(
                group,
                "polyline",
                points=" ".join(f"{_fmt(x_of(m))},{_fmt(y_of(v))}" for m, v in run),
                fill="none",
                stroke=NHS_DARK_GREY,
                stroke_width=2,
                stroke_dasharray="6 4",
                **{"class": "chart-trajectory-line"},
            )

    # Actual -----------------------------------------------------------------------------------
    group = _el(root, "g", **{"class": "chart-actual"})
    for run in _runs([(m, p.actual) for m, p in zip(months, series, strict=True)]):
        obstacles.append([(x_of(m), y_of(v)) for m, v in run])
        if len(run) > 1:
            _el(
                group,
                "polyline",
                points=" ".join(f"{_fmt(x_of(m))},{_fmt(y_of(v))}" for m, v in run),
                fill="none",
                stroke=NHS_BLUE,
                stroke_width=2.5,
                stroke_linejoin="round",
                stroke_linecap="round",
                **{"class": "chart-actual-line"},
            )
    radius = 4.0 if (not span or slot >= 10) else 2.5
    for month, point in zip(months, series, strict=True):
        if point.actual is None:
            continue
        kind = special.get(month)
        if kind == "improvement":
            fill, stroke = SPC_IMPROVEMENT, NHS_WHITE
        elif kind == "concern":
            fill, stroke = SPC_CONCERN, NHS_WHITE
        elif spc_mode:
            fill, stroke = SPC_COMMON, NHS_WHITE
        else:
            fill, stroke = NHS_BLUE, NHS_WHITE
        marker = _el(
            group,
            "circle",
            cx=x_of(month),
            cy=y_of(point.actual),
            r=radius + (1 if kind else 0),
            fill=fill,
            stroke=stroke,
            stroke_width=1.5,
            **{"class": f"chart-point chart-point-{kind or 'common'}"},
        )
        tooltip = f"{_month_long(point.period)}: {format_value(point.actual, unit_label)}"
        if point.trajectory is not None:
            tooltip += f" (trajectory {format_value(point.trajectory, unit_label)})"
        if kind:
            tooltip += f", special cause {kind}"
        _el(marker, "title", tooltip)

    if target is not None:
        label = f"Target {format_value(target, unit_label)}"
        lx, ly, anchor = _place_label(
            _text_width(label, 11) + 4,
            y_of(target),
            (plot_left, plot_top, plot_right, plot_bottom),
            obstacles,
        )
        _el(
            root,
            "text",
            label,
            x=lx,
            y=ly,
            text_anchor=anchor,
            fill=NHS_GREEN,
            font_size=11,
            font_weight="bold",
            stroke=NHS_WHITE,
            stroke_width=3,
            stroke_linejoin="round",
            paint_order="stroke",
            **{"class": "chart-target-label"},
        )

    if not has_actual:
        _el(
            root,
            "text",
            "No data yet",
            x=(plot_left + plot_right) / 2,
            y=(plot_top + plot_bottom) / 2,
            text_anchor="middle",
            dominant_baseline="middle",
            fill=NHS_DARK_GREY,
            font_size=14,
        )

    return _serialise(root)


def _place_label(
    label_width: float,
    line_y: float,
    plot: tuple[float, float, float, float],
    obstacles: Sequence[Sequence[tuple[float, float]]],
) -> tuple[float, float, str]:
    """Where to put a label on a horizontal line so it covers as little data as possible.

    Tries the right end then the left end, above then below the line, then along it; returns
    the (x, y, text-anchor) of the candidate whose box the data lines cross least.
    """
    left, top, right, bottom = plot
    above, below = line_y - 5, line_y + 14
    candidates: list[tuple[float, float, str]] = []
    for y in (above, below):
        candidates += [(right - 2, y, "end"), (left + 4, y, "start")]
    for y in (above, below):
        for fraction in (0.75, 0.25, 0.5):
            candidates.append((left + (right - left) * fraction, y, "middle"))

    samples: list[tuple[float, float]] = []
    for run in obstacles:
        samples.extend(run)
        for (x1, y1), (x2, y2) in zip(run, run[1:], strict=False):
            steps = max(1, int(max(abs(x2 - x1), abs(y2 - y1)) // 2))
            samples.extend(
                (x1 + (x2 - x1) * i / steps, y1 + (y2 - y1) * i / steps) for i in range(1, steps)
            )

    def cost(candidate: tuple[float, float, str]) -> int:
        x, y, anchor = candidate
        x0 = {"end": x - label_width, "start": x, "middle": x - label_width / 2}[anchor]
        box = (x0 - 5, y - 11 - 3, x0 + label_width + 5, y + 3 + 3)
        outside = box[1] < top - 8 or box[3] > bottom + 2
        hits = sum(box[0] <= px <= box[2] and box[1] <= py <= box[3] for px, py in samples)
        return hits + (10_000 if outside else 0)

    best = min(candidates, key=cost)  # min keeps the earliest of equal-cost candidates
    return best


def _legend_swatch(parent: ET.Element, item: _LegendItem, x: float, y: float, size: int) -> None:
    line = {"x1": x, "x2": x + size, "y1": y, "y2": y, "stroke": item.colour}
    if item.kind == "actual":
        _el(parent, "line", stroke_width=2.5, **line)
        _el(
            parent,
            "circle",
            cx=x + size / 2,
            cy=y,
            r=3.5,
            fill=item.colour,
            stroke=NHS_WHITE,
            stroke_width=1.5,
        )
    elif item.kind == "dashed":
        _el(parent, "line", stroke_width=2, stroke_dasharray="6 4", **line)
    elif item.kind == "dotted":
        _el(parent, "line", stroke_width=1.2, stroke_dasharray="2 3", **line)
    elif item.kind == "thin":
        _el(parent, "line", stroke_width=1, **line)
    elif item.kind == "marker":
        _el(parent, "circle", cx=x + size / 2, cy=y, r=5, fill=item.colour, stroke=NHS_WHITE)
    else:
        _el(parent, "line", stroke_width=2, **line)


# ---------------------------------------------------------------------------------------------
# Sparkline
# ---------------------------------------------------------------------------------------------


def sparkline(
    values: list[float | None],
    *,
    target: float | None = None,
    width: int = 120,
    height: int = 28,
    label: str,
) -> str:
    """A tiny trend line for a table cell: gaps for missing values, a dot on the latest value."""
    width = max(int(width), 16)
    height = max(int(height), 8)
    root = _root(width, height, aria_label=label, **{"class": "escalate-sparkline"})
    _el(root, "title", label)
    data = [_number(v) for v in values]
    target = _number(target)
    finite = _finite(data + [target])
    if not any(v is not None for v in data):
        _el(
            root,
            "line",
            x1=4.0,
            x2=width - 4.0,
            y1=height / 2,
            y2=height / 2,
            stroke=NHS_GREY_3,
            stroke_width=1,
            stroke_dasharray="2 3",
        )
        return _serialise(root)

    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-6:
        pad = abs(hi) * 0.1 if abs(hi) >= 1e-5 else 1.0
        lo, hi = lo - pad, hi + pad
    pad_x, pad_y = 3.5, 3.5

    def x_of(index: int) -> float:
        if len(data) == 1:
            return width / 2
        return pad_x + index * (width - 2 * pad_x) / (len(data) - 1)

    def y_of(value: float) -> float:
        return height - pad_y - (value - lo) / (hi - lo) * (height - 2 * pad_y)

    if target is not None:
        _el(
            root,
            "line",
            x1=0.0,
            x2=float(width),
            y1=y_of(target),
            y2=y_of(target),
            stroke=NHS_GREEN,
            stroke_width=1,
            stroke_dasharray="3 2",
        )
    for run in _runs(list(enumerate(data))):
        if len(run) > 1:
            _el(
                root,
                "polyline",
                points=" ".join(f"{_fmt(x_of(i))},{_fmt(y_of(v))}" for i, v in run),
                fill="none",
                stroke=NHS_BLUE,
                stroke_width=1.5,
                stroke_linejoin="round",
                stroke_linecap="round",
            )
        elif len(run) == 1:
            i, v = run[0]
            _el(root, "circle", cx=x_of(i), cy=y_of(v), r=1.2, fill=NHS_BLUE)
    last_index = max(i for i, v in enumerate(data) if v is not None)
    _el(root, "circle", cx=x_of(last_index), cy=y_of(data[last_index]), r=2.5, fill=NHS_BLUE)
    return _serialise(root)
