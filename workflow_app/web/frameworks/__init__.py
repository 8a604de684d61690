"""Frameworks: what each one says, with its lifecycle diagrams."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import login_required

from state_machines import (
    DiagramUnavailable,
    available_frameworks,
    get_framework,
    mermaid_diagram,
    svg_diagram,
)

bp = Blueprint("frameworks", __name__, url_prefix="/frameworks")


@bp.route("/")
@login_required
def index():
    """The bundled frameworks."""
    frameworks = [get_framework(name) for name in available_frameworks()]
    return render_template("frameworks/index.html", frameworks=frameworks)


@bp.route("/<name>")
@login_required
def show(name: str):
    """One framework: tracks, levels, transitions with decision rights, diagrams."""
    if name not in available_frameworks():
        abort(404)
    framework = get_framework(name)
    diagrams = []
    for track in framework.tracks.values():
        try:
            diagrams.append((track, svg_diagram(framework, track.name), None))
        except DiagramUnavailable:
            diagrams.append((track, None, mermaid_diagram(framework, track.name)))
    return render_template("frameworks/show.html", framework=framework, diagrams=diagrams)
