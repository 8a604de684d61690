"""Lifecycle diagrams of a framework: mermaid text and inline SVG.

Both are generated here from the framework's tracks and transitions (the same data the
machine in :mod:`state_machines.escalation` is built from), not through
``transitions.extensions.GraphMachine``. Reasons, checked against transitions 0.9.3:

* ``GraphMachine(model=None, ...)`` cannot draw at all (``get_graph`` reads ``self.models[0]``),
  and each model gets its own cached graph, so it would need one throwaway machine per track;
* its mermaid backend emits a ``stateDiagram-v2`` with bare state ids, so two tracks sharing a
  level id ("3" in both IQPF tracks) would merge into one node, and mermaid cannot style
  states inside composite states (one section per track);
* its states cannot carry a display label, and we want level titles as node labels.

Mermaid output is a ``flowchart`` with one ``subgraph`` per track (for per-measure frameworks,
only the template track), node ids ``<track>__<level>``, upward moves as solid arrows,
downward moves as dotted arrows, each labelled with the signature rule that decides it. The
current level gets ``classDef current`` (filled) and a proposed level ``classDef proposed``
(dashed border). The SVG is the same graph rendered by Debian's graphviz ``dot`` through the
``graphviz`` package, cleaned for inlining in HTML (no XML prolog or DOCTYPE, ``role="img"``,
``aria-label`` and a ``<title>``).
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import textwrap
from collections.abc import Mapping

from .framework import Framework, Track

__all__ = ["DiagramUnavailable", "mermaid_diagram", "svg_diagram"]

NHS_BLUE = "#005eb8"
NHS_DARK_BLUE = "#003087"
NHS_TEXT = "#212b32"
NHS_GREY = "#768692"


class DiagramUnavailable(RuntimeError):
    """The SVG cannot be drawn here (Debian's graphviz ``dot`` is not installed)."""


# --------------------------------------------------------------------------------------------
# Shared selection logic
# --------------------------------------------------------------------------------------------


def _selected_tracks(framework: Framework, track: str | None) -> list[tuple[Track, str]]:
    """[(track, heading)] to draw. A per-measure key draws the template under that key."""
    if track is None:
        return [(t, t.title) for t in framework.tracks.values()]
    found = framework.track_for(track)
    heading = found.title
    if track != found.name:
        heading = f"{found.title} {track.partition(':')[2]}"
    return [(found, heading)]


def _marks(framework: Framework, levels: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """Resolve {track key: level} to {template track name: level}, checking both."""
    out: dict[str, str] = {}
    for key, level in (levels or {}).items():
        found = framework.track_for(key)
        if level not in found.levels:
            raise ValueError(
                f'{what} level "{level}" is not a level of the {key!r} track '
                f"(its levels: {', '.join(found.levels)})"
            )
        out[found.name] = level
    return out


def _node_id(track: str, level: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{track}__{level}")


def _label(framework: Framework, level: str) -> str:
    """The level's title; numeric ids whose title does not show them get "Level n: "."""
    title = framework.levels[level].title
    if level[0].isdigit() and level.lower() not in title.lower():
        return f"Level {level}: {title}"
    return title


# --------------------------------------------------------------------------------------------
# Mermaid
# --------------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Escape text for a quoted mermaid label."""
    return text.replace('"', "#quot;").replace("\n", " ")


def mermaid_diagram(
    framework: Framework,
    track: str | None = None,
    current: dict[str, str] | None = None,
    proposed: dict[str, str] | None = None,
) -> str:
    """Mermaid ``flowchart`` text of a framework's tracks.

    :param framework: a loaded framework.
    :param track: draw only this track key (``"finance"``, ``"measure:RTT18"``); default all.
    :param current: {track key: level} to mark as current (filled).
    :param proposed: {track key: level} to mark as proposed (dashed).
    :raises KeyError: for an unknown track key.
    :raises ValueError: for a level that is not on its track.
    """
    selected = _selected_tracks(framework, track)
    now = _marks(framework, current, "current")
    next_ = _marks(framework, proposed, "proposed")
    lines = [
        "---",
        'title: "' + framework.title.replace('"', "'") + '"',
        "---",
        "flowchart LR",
        f"  accTitle: {_mermaid_text(framework.title)} lifecycle",
        "  accDescr: Escalation levels on each track; solid arrows escalate, dotted arrows "
        "de-escalate; each arrow names who decides.",
    ]
    marked: list[tuple[str, str]] = []
    for track_obj, heading in selected:
        lines.append(f'  subgraph track_{track_obj.name}["{_mermaid_text(heading)}"]')
        lines.append("    direction LR")
        for level in track_obj.levels:
            node = _node_id(track_obj.name, level)
            lines.append(f'    {node}["{_mermaid_text(_label(framework, level))}"]')
            if now.get(track_obj.name) == level:
                marked.append((node, "current"))
            elif next_.get(track_obj.name) == level:
                marked.append((node, "proposed"))
        lines.append("  end")
        for t in framework.transitions:
            if t.track != track_obj.name:
                continue
            arrow = "-->" if t.direction == "up" else "-.->"
            source = _node_id(t.track, t.from_level)
            dest = _node_id(t.track, t.to_level)
            lines.append(f'  {source} {arrow}|"{_mermaid_text(t.signed_by)}"| {dest}')
    lines.append(
        f"  classDef current fill:{NHS_BLUE},stroke:{NHS_DARK_BLUE},stroke-width:3px,color:#ffffff"
    )
    lines.append(
        f"  classDef proposed fill:#ffffff,stroke:{NHS_BLUE},stroke-width:3px,"
        f"stroke-dasharray:6 4,color:{NHS_TEXT}"
    )
    for node, css_class in marked:
        lines.append(f"  class {node} {css_class}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------------------------


def _wrap(text: str, width: int = 26) -> str:
    """Wrap a label for dot (``\\n`` is dot's centred line break)."""
    return "\\n".join(textwrap.wrap(text, width)) or text


def svg_diagram(
    framework: Framework,
    track: str | None = None,
    current: dict[str, str] | None = None,
    proposed: dict[str, str] | None = None,
) -> str:
    """SVG markup of a framework's tracks, ready to inline in an HTML page.

    Same arguments as :func:`mermaid_diagram`. Results are cached per argument set.

    :raises DiagramUnavailable: if Debian's graphviz ``dot`` binary is not installed.
    :raises KeyError: for an unknown track key.
    :raises ValueError: for a level that is not on its track.
    """
    if shutil.which("dot") is None:
        raise DiagramUnavailable(
            "Cannot draw the diagram: the graphviz 'dot' program is not installed "
            "(install Debian's graphviz package: apt-get install graphviz)."
        )
    # Validate and normalise before caching, so bad input raises the same errors every time.
    _selected_tracks(framework, track)
    now = tuple(sorted(_marks(framework, current, "current").items()))
    next_ = tuple(sorted(_marks(framework, proposed, "proposed").items()))
    return _svg_cached(framework, track, now, next_)


@functools.lru_cache(maxsize=256)
def _svg_cached(
    framework: Framework,
    track: str | None,
    now: tuple[tuple[str, str], ...],
    next_: tuple[tuple[str, str], ...],
) -> str:
    import graphviz  # imported lazily: only pages that draw need it

    current, proposed = dict(now), dict(next_)
    selected = _selected_tracks(framework, track)
    graph = graphviz.Digraph(
        name=framework.name,
        graph_attr={
            "rankdir": "LR",
            "fontname": "Arial",
            "fontsize": "14",
            "bgcolor": "transparent",
            "nodesep": "0.35",
            "ranksep": "0.6",
        },
        node_attr={
            "shape": "box",
            "style": "rounded",
            "fontname": "Arial",
            "fontsize": "12",
            "color": NHS_TEXT,
            "fontcolor": NHS_TEXT,
            "margin": "0.15,0.08",
        },
        edge_attr={"fontname": "Arial", "fontsize": "10", "color": NHS_TEXT},
    )
    for track_obj, heading in selected:
        with graph.subgraph(name=f"cluster_{track_obj.name}") as cluster:
            cluster.attr(label=heading, style="rounded", color=NHS_GREY, fontcolor=NHS_TEXT)
            for level in track_obj.levels:
                label = _label(framework, level)
                attrs: dict[str, str] = {}
                if current.get(track_obj.name) == level:
                    label += " (current)"
                    attrs = {
                        "style": "rounded,filled,bold",
                        "fillcolor": NHS_BLUE,
                        "fontcolor": "#ffffff",
                        "color": NHS_DARK_BLUE,
                        "penwidth": "2",
                    }
                elif proposed.get(track_obj.name) == level:
                    label += " (proposed)"
                    attrs = {
                        "style": "rounded,dashed,bold",
                        "color": NHS_BLUE,
                        "penwidth": "2.5",
                    }
                cluster.node(_node_id(track_obj.name, level), label=_wrap(label), **attrs)
        for t in framework.transitions:
            if t.track != track_obj.name:
                continue
            edge_attrs = {"label": t.signed_by}
            if t.direction == "down":
                edge_attrs.update(style="dotted", color=NHS_GREY, fontcolor=NHS_GREY)
            graph.edge(_node_id(t.track, t.from_level), _node_id(t.track, t.to_level), **edge_attrs)
    try:
        svg = graph.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as exc:  # removed between which() and pipe()
        raise DiagramUnavailable(
            "Cannot draw the diagram: the graphviz 'dot' program is not installed "
            "(install Debian's graphviz package: apt-get install graphviz)."
        ) from exc
    title = f"{framework.title}: " + ", ".join(heading for _, heading in selected)
    marks = [
        f"{t.title} current level {_label(framework, lvl)}"
        for t, _ in selected
        if (lvl := current.get(t.name))
    ] + [
        f"{t.title} proposed level {_label(framework, lvl)}"
        for t, _ in selected
        if (lvl := proposed.get(t.name))
    ]
    if marks:
        title += " (" + "; ".join(marks) + ")"
    return _inline_svg(svg, title)


def _inline_svg(svg: str, title: str) -> str:
    """Strip the XML prolog, DOCTYPE and comments; add role, aria-label and <title>."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    svg = svg.strip()
    escaped = html.escape(title, quote=True)
    svg = re.sub(
        r"<svg\b([^>]*)>",
        lambda m: (
            # No style attribute: the pages' CSP forbids inline styles; CSS sizes it.
            f'<svg{m.group(1)} role="img" aria-label="{escaped}">\n<title>{escaped}</title>'
        ),
        svg,
        count=1,
    )
    return svg + "\n"
