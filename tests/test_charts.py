"""Server-side SVG charts: valid, accessible, CSP-safe (no inline styles) and escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own output
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_app.charts import (
    ChartBands,
    SeriesPoint,
    description_of,
    format_value,
    measure_chart,
    sparkline,
)

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    assert not svg.lstrip().startswith("<?xml")
    return ET.fromstring(svg)  # noqa: S314 - our own output


def months(n: int, start: date = date(2025, 11, 1)) -> list[date]:
    out, year, month = [], start.year, start.month
    for _ in range(n):
        out.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def series(values, trajectory=None, start: date = date(2025, 11, 1)) -> list[SeriesPoint]:
    trajectory = trajectory or [None] * len(values)
    return [
        SeriesPoint(period, actual, traj)
        for period, actual, traj in zip(months(len(values), start), values, trajectory, strict=True)
    ]


def chart(**overrides) -> str:
    kwargs = {
        "title": "4-hour A&E performance",
        "unit_label": "%",
        "points": series([88.1, 89.4, 87.2, 90.5, 91.2, 92.8, 90.1, 86.0, 93.4, 94.1, 92.6]),
        "target": 92,
        "direction": "higher_is_better",
    }
    kwargs.update(overrides)
    return measure_chart(**kwargs)


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{NS}text")]


def assert_csp_safe(root: ET.Element) -> None:
    for element in root.iter():
        assert "style" not in element.attrib, element.tag
        assert element.tag != f"{NS}style"
        assert element.tag != f"{NS}script"
        assert not any(name.startswith("on") for name in element.attrib)


def accessible_parts(root: ET.Element) -> tuple[ET.Element, ET.Element]:
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return title, desc


def test_realistic_chart_is_valid_accessible_and_csp_safe():
    points = series(
        [88.1, 89.4, 87.2, 90.5, None, 91.2, 92.8, 90.1, 86.0, 93.4, 94.1, 92.6],
        [88, 88.5, 89, 89.5, 90, 90.5, 91, 91.5, 92, 92, 92, 92],
    )
    periods = [p.period for p in points]
    svg = chart(
        points=points,
        bands=ChartBands(mean=90.5, ucl=95.9, lcl=85.1),
        special_cause={periods[8]: "concern", periods[10]: "improvement"},
        rag={periods[0]: "red", periods[1]: "amber", periods[9]: "green", periods[4]: None},
    )
    root = parse(svg)
    title, desc = accessible_parts(root)
    assert title.text == "4-hour A&E performance"
    assert desc.text == description_of(
        title="4-hour A&E performance",
        unit_label="%",
        points=points,
        target=92,
        direction="higher_is_better",
        bands=ChartBands(mean=90.5, ucl=95.9, lcl=85.1),
        special_cause={periods[8]: "concern", periods[10]: "improvement"},
    )
    assert_csp_safe(root)
    labels = texts(root)
    assert "Target 92%" in labels
    assert "Oct 26" in labels  # the latest month is always labelled
    assert {"Actual", "Trajectory", "Target", "Mean", "Process limits"} <= set(labels)
    assert any(label.endswith("%") for label in labels if re.fullmatch(r"[\d.]+%", label))
    assert root.findall(f".//{NS}g[@class='chart-spc']/{NS}line[@class='chart-limit']")
    fills = {c.get("fill") for c in root.iter(f"{NS}circle")}
    assert {"#ed8b00", "#41b6e6", "#768692"} <= fills
    rag_fills = [r.get("fill") for r in root.findall(f".//{NS}g[@class='chart-rag']/{NS}rect")]
    assert len(rag_fills) == 12
    assert rag_fills[:2] == ["#d5281b", "#ffb81c"] and rag_fills[9] == "#007f3b"
    assert rag_fills[4] == "#aeb7bd"
    dashed = root.findall(f".//{NS}polyline[@class='chart-trajectory-line']")
    assert dashed and all(p.get("stroke-dasharray") for p in dashed)


def test_gap_splits_actual_line_and_is_not_joined():
    root = parse(chart(points=series([80, 82, None, 85, 86, 87])))
    lines = root.findall(f".//{NS}polyline[@class='chart-actual-line']")
    assert len(lines) == 2
    assert [len(line.get("points").split()) for line in lines] == [2, 3]
    assert all(line.get("stroke") == "#005eb8" for line in lines)


def test_missing_month_also_breaks_the_line():
    points = [
        SeriesPoint(date(2026, 1, 1), 1.0, None),
        SeriesPoint(date(2026, 2, 1), 2.0, None),
        SeriesPoint(date(2026, 4, 1), 3.0, None),
        SeriesPoint(date(2026, 5, 1), 4.0, None),
    ]
    root = parse(chart(points=points, unit_label="", target=None))
    assert len(root.findall(f".//{NS}polyline[@class='chart-actual-line']")) == 2


def test_data_text_is_escaped_never_markup():
    nasty = 'A&E <script>alert("x")</script> & "quotes"'
    svg = chart(title=nasty, unit_label="<b>beds</b>")
    root = parse(svg)
    title, desc = accessible_parts(root)
    assert title.text == nasty
    assert nasty in desc.text
    assert not list(root.iter("script")) and not list(root.iter(f"{NS}script"))
    assert not list(root.iter(f"{NS}b"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>beds</b>" in texts(root)  # the axis caption, as text
    assert_csp_safe(root)


def test_invalid_xml_characters_are_dropped():
    root = parse(chart(title="bad\x00\x0bchars"))
    assert root.find(f"{NS}title").text == "badchars"


def test_ids_unique_per_chart():
    first, second = parse(chart()), parse(chart(title="Cancer 62-day"))
    third = parse(chart(points=series([1, 2, 3])))
    ids = [root.get("id") for root in (first, second, third)]
    assert len(set(ids)) == 3
    all_ids = [el.get("id") for root in (first, second) for el in root.iter() if el.get("id")]
    assert len(all_ids) == len(set(all_ids))
    assert parse(chart()).get("id") == ids[0]  # deterministic


def test_empty_series_says_no_data_yet():
    root = parse(chart(points=[]))
    accessible_parts(root)
    assert "No data yet" in texts(root)
    assert "no data yet" in root.find(f"{NS}desc").text
    assert_csp_safe(root)


def test_all_actuals_missing_still_draws_trajectory_and_no_data_message():
    root = parse(chart(points=series([None, None, None], [80, 81, 82])))
    assert "No data yet" in texts(root)
    assert root.findall(f".//{NS}polyline[@class='chart-trajectory-line']")


@pytest.mark.parametrize(
    "values",
    [[91.0], [5, 5, 5, 5], [0, 0, 0], [-3.5, -1.2, 2.0, -0.4], [1e-9, 2e-9]],
)
def test_edge_cases_render(values):
    root = parse(chart(points=series(values), target=None, unit_label="days"))
    assert_csp_safe(root)
    for circle in root.iter(f"{NS}circle"):
        for attr in ("cx", "cy"):
            assert re.fullmatch(r"-?\d+(\.\d)?", circle.get(attr)), circle.get(attr)
    assert "days" in texts(root)


def test_y_axis_ticks_are_nice_and_cover_everything():
    points = series([88, 90, 91], [85, 86, 87])
    root = parse(chart(points=points, target=97, bands=ChartBands(mean=89, ucl=99.5, lcl=80)))
    grid = root.find(f".//{NS}g[@class='chart-grid']")
    ticks = [t for t in texts(grid) if re.fullmatch(r"-?[\d.,]+%", t)]
    numbers = [float(t.rstrip("%")) for t in ticks]
    assert 4 <= len(numbers) <= 6
    assert min(numbers) <= 80 and max(numbers) >= 99.5
    steps = {round(b - a, 6) for a, b in zip(numbers, numbers[1:], strict=False)}
    assert len(steps) == 1


def test_money_values_formatted_with_pound_and_commas():
    root = parse(
        chart(
            title="Agency spend",
            unit_label="£",
            points=series([1234567, 1100000, 1500000, -20000]),
            target=1000000,
            direction="lower_is_better",
        )
    )
    labels = texts(root)
    assert "Target £1,000,000" in labels
    assert "£1,000,000" in labels and "-£500,000" in labels
    assert "Lower is better ↓" in labels
    assert "£1,234,567" not in labels  # ticks are round
    assert "-£20,000 in February 2026" in root.find(f"{NS}desc").text
    assert "£1,234,567" in "".join(root.itertext())  # in the point's tooltip


def test_x_labels_thinned_when_crowded():
    root = parse(chart(points=series([50 + i % 7 for i in range(36)]), target=None))
    month_labels = [t for t in texts(root) if re.fullmatch(r"[A-Z][a-z]{2} \d\d", t)]
    assert 4 <= len(month_labels) < 36
    assert month_labels[0] == "Oct 28"  # latest first (labelled from the right), always shown


def test_description_mentions_latest_target_and_months_met():
    points = series([90, 93, 91, 92.5, 89, 94])  # Nov 25 .. Apr 26
    text = description_of(
        title="A&E", unit_label="%", points=points, target=92, direction="higher_is_better"
    )
    assert "94% in April 2026" in text
    assert "The target is 92%" in text
    assert "met its target in 3 of the last 6 months" in text

    lower = description_of(
        title="Waits", unit_label="days", points=points, target=92, direction="lower_is_better"
    )
    assert "met its target in 3 of the last 6 months" in lower
    assert "94 days in April 2026" in lower


def test_description_window_is_last_six_months_with_data():
    points = series([95, 95, 95, 80, 80, 95, 95, 80, None, 80])
    text = description_of(
        title="X", unit_label="%", points=points, target=90, direction="higher_is_better"
    )
    assert "met its target in 2 of the last 6 months" in text
    assert "80% in August 2026" in text


def test_description_trend_special_cause_and_trajectory():
    points = series([80, 82, 84, 86, 88, 90], [85, 85, 85, 85, 85, 89])
    periods = [p.period for p in points]
    text = description_of(
        title="X",
        unit_label="%",
        points=points,
        target=None,
        direction="higher_is_better",
        bands=ChartBands(mean=85, ucl=92, lcl=78),
        special_cause={periods[5]: "improvement"},
    )
    assert "No target is set" in text
    assert "risen from 80% in November 2025 to 90% in April 2026 (improving)" in text
    assert "ahead of trajectory" in text
    assert "upper process limit 92%" in text
    assert "Special cause variation: improvement in April 2026" in text

    flat = description_of(
        title="X", unit_label="", points=series([5, 5]), target=5, direction="lower_is_better"
    )
    assert "stayed at 5" in flat and "met its target in 2 of the last 2 months" in flat

    single = description_of(
        title="X", unit_label="%", points=series([50]), target=60, direction="higher_is_better"
    )
    assert "did not meet its target in the latest month" in single


def test_format_value():
    assert format_value(92, "%") == "92%"
    assert format_value(91.25, "%") == "91.3%"  # half up, not float/banker's rounding
    assert format_value(92.0, "%") == "92%"
    assert format_value(-0.001, "%") == "0%"
    assert format_value(1234567, "£") == "£1,234,567"
    assert format_value(-1234.5, "£") == "-£1,235"
    assert format_value(12.5, "£", decimals=2) == "£12.50"
    assert format_value(4.5, "days") == "4.5 days"
    assert format_value(0.5, "") == "0.5"


def test_sparkline_valid_with_aria_label():
    svg = sparkline([1, 2, None, 3, 2.5, 4], target=3, label='Trend for "A&E" <4h>')
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == 'Trend for "A&E" <4h>'
    assert_csp_safe(root)
    assert len(root.findall(f"{NS}polyline")) == 2
    assert root.get("width") == "120" and root.get("height") == "28"


@pytest.mark.parametrize("values", [[], [None, None], [7], [3, 3, 3], [-1, 0, 1]])
def test_sparkline_edge_cases(values):
    root = parse(sparkline(values, label="x"))
    assert root.get("aria-label") == "x"
    assert_csp_safe(root)


values_strategy = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, min_value=None, max_value=None, width=32),
    st.floats(min_value=-1e9, max_value=1e9),
)


@settings(max_examples=60, deadline=None)
@given(
    actuals=st.lists(values_strategy, max_size=30),
    target=values_strategy,
    mean=values_strategy,
    ucl=values_strategy,
    unit=st.sampled_from(["%", "£", "", "days", "<&>"]),
    direction=st.sampled_from(["higher_is_better", "lower_is_better"]),
)
def test_any_series_renders_valid_svg_without_nan(actuals, target, mean, ucl, unit, direction):
    points = series(actuals)
    svg = measure_chart(
        title="T",
        unit_label=unit,
        points=points,
        target=target,
        direction=direction,
        bands=ChartBands(mean=mean, ucl=ucl),
        special_cause={p.period: "concern" for p in points[::3]},
        rag={p.period: "green" for p in points[::2]},
    )
    root = parse(svg)
    accessible_parts(root)
    assert_csp_safe(root)
    for line in root.iter(f"{NS}polyline"):
        assert re.fullmatch(r"(-?[\d.]+,-?[\d.]+ ?)+", line.get("points")), line.get("points")
    for element in root.iter():
        for name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "width", "height"):
            if name in element.attrib:
                assert re.fullmatch(r"-?\d+(\.\d+)?", element.get(name)), (name, element.get(name))
    assert parse(sparkline(actuals, target=target, label="s")).get("aria-label") == "s"
