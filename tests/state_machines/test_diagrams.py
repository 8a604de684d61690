"""Mermaid text and inline SVG of each bundled framework."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from state_machines import DiagramUnavailable, get_framework, mermaid_diagram, svg_diagram

BUNDLED = ["iqpf", "nhs_wales", "system_tiers"]
SVG_NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Debian's graphviz 'dot' is not installed (apt-get install graphviz)",
)


def current_of(name):
    framework = get_framework(name)
    track = next(iter(framework.tracks.values()))
    return track, {track.name: track.levels[1]}, {track.name: track.levels[2]}


@pytest.mark.parametrize("name", BUNDLED)
def test_mermaid_mentions_every_level_title_and_marks_current(name):
    framework = get_framework(name)
    track, current, proposed = current_of(name)
    text = mermaid_diagram(framework, current=current, proposed=proposed)
    assert "flowchart LR" in text
    for level in framework.levels.values():
        assert level.title in text
    for t in framework.tracks.values():
        assert f"subgraph track_{t.name}[" in text
    assert f"class {track.name}__{track.levels[1]} current" in text
    assert f"class {track.name}__{track.levels[2]} proposed" in text
    assert "classDef current fill:" in text
    assert "stroke-dasharray" in text


def test_mermaid_single_track_and_arrows():
    f = get_framework("iqpf")
    text = mermaid_diagram(f, "finance", current={"finance": "3"})
    assert "performance__" not in text
    assert 'finance__1 -->|"ceo"| finance__2b' in text
    assert 'finance__3 -.->|"executive_team"| finance__2b' in text  # downward: dotted
    assert "class finance__3 current" in text


def test_mermaid_per_measure_key():
    f = get_framework("system_tiers")
    text = mermaid_diagram(f, "measure:RTT18", current={"measure:RTT18": "icb"})
    assert 'subgraph track_measure["Measure RTT18"]' in text
    assert "class measure__icb current" in text


def test_mermaid_rejects_unknown_marks():
    f = get_framework("iqpf")
    with pytest.raises(ValueError, match='"2b" is not a level'):
        mermaid_diagram(f, current={"performance": "2b"})
    with pytest.raises(KeyError):
        mermaid_diagram(f, track="budget")


def _text_of(root) -> str:
    return " ".join(" ".join(el.itertext()) for el in root.iter(f"{SVG_NS}text"))


@needs_dot
@pytest.mark.parametrize("name", BUNDLED)
def test_svg_is_valid_inline_xml_with_every_level_title(name):
    framework = get_framework(name)
    track, current, proposed = current_of(name)
    svg = svg_diagram(framework, current=current, proposed=proposed)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<!DOCTYPE" not in svg
    root = ET.fromstring(svg)  # noqa: S314 - our own dot output
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("role") == "img"
    assert framework.title in root.get("aria-label")
    assert root[0].tag == f"{SVG_NS}title"
    text = " ".join(_text_of(root).split())
    for level in framework.levels.values():
        assert level.title in text, level.title
    assert "(current)" in text
    assert "(proposed)" in text


@needs_dot
def test_svg_marks_current_filled_and_proposed_dashed():
    f = get_framework("iqpf")
    svg = svg_diagram(
        f, "performance", current={"performance": "2a"}, proposed={"performance": "3"}
    )
    root = ET.fromstring(svg)  # noqa: S314 - our own dot output
    shapes = {}
    for group in root.iter(f"{SVG_NS}g"):
        if group.get("class") == "node":
            label = _text_of(group)
            # (an Element without children is falsy, so no `or` here)
            shape = group.find(f"{SVG_NS}path")
            shapes[label] = shape if shape is not None else group.find(f"{SVG_NS}polygon")
    filled = next(s for label, s in shapes.items() if "(current)" in label)
    dashed = next(s for label, s in shapes.items() if "(proposed)" in label)
    assert filled.get("fill") == "#005eb8"
    assert dashed.get("stroke-dasharray")
    assert "current level Level 2a" in root.get("aria-label")


def test_svg_without_dot_raises_diagram_unavailable(monkeypatch):
    monkeypatch.setattr("state_machines.diagrams.shutil.which", lambda name: None)
    with pytest.raises(DiagramUnavailable, match="install Debian's graphviz"):
        svg_diagram(get_framework("iqpf"))
