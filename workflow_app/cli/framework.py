"""``escalate framework ...``: check, draw and list framework files.

Imports only click and :mod:`state_machines`, so it works without an application or database.
"""

from __future__ import annotations

from pathlib import Path

import click

from state_machines import (
    DiagramUnavailable,
    Framework,
    FrameworkInvalid,
    available_frameworks,
    get_framework,
    load_framework,
    mermaid_diagram,
    svg_diagram,
)


@click.group("framework")
def framework_cli() -> None:
    """Check and draw framework files."""


def _report_invalid(exc: FrameworkInvalid) -> None:
    for error in exc.errors:
        click.echo(str(error), err=True)


def _resolve(name: str) -> Framework:
    """A bundled framework by name, or a framework file by path."""
    looks_like_path = name.endswith((".yaml", ".yml")) or "/" in name or Path(name).is_file()
    if looks_like_path:
        return load_framework(name)
    try:
        return get_framework(name)
    except KeyError as exc:
        raise click.ClickException(exc.args[0] if exc.args else str(exc)) from None


@framework_cli.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check_command(file: Path) -> None:
    """Validate FILE and list every problem found."""
    try:
        framework = load_framework(file)
    except FrameworkInvalid as exc:
        _report_invalid(exc)
        raise SystemExit(1) from None
    click.echo(
        f"OK: {framework.name} ({len(framework.tracks)} tracks, {len(framework.levels)} levels, "
        f"{len(framework.transitions)} transitions)"
    )


def _parse_marks(values: tuple[str, ...], option: str) -> dict[str, str]:
    marks: dict[str, str] = {}
    for value in values:
        track, sep, level = value.partition("=")
        if not sep or not track or not level:
            raise click.BadParameter(
                f"{value!r}: write TRACK=LEVEL, e.g. finance=2b", param_hint=option
            )
        marks[track] = level
    return marks


@framework_cli.command("diagram")
@click.argument("name")
@click.option("--track", "track", default=None, help="Draw only this track (e.g. finance).")
@click.option("--svg", "as_svg", is_flag=True, help="Print SVG (needs graphviz 'dot').")
@click.option(
    "--current", "current", multiple=True, metavar="TRACK=LEVEL", help="Mark a current level."
)
@click.option(
    "--proposed", "proposed", multiple=True, metavar="TRACK=LEVEL", help="Mark a proposed level."
)
def diagram_command(
    name: str,
    track: str | None,
    as_svg: bool,
    current: tuple[str, ...],
    proposed: tuple[str, ...],
) -> None:
    """Print the lifecycle of framework NAME (a bundled name or a .yaml file) as mermaid text,
    or as SVG with --svg."""
    try:
        framework = _resolve(name)
    except FrameworkInvalid as exc:
        _report_invalid(exc)
        raise SystemExit(1) from None
    draw = svg_diagram if as_svg else mermaid_diagram
    try:
        text = draw(
            framework,
            track,
            current=_parse_marks(current, "--current") or None,
            proposed=_parse_marks(proposed, "--proposed") or None,
        )
    except DiagramUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise click.ClickException(exc.args[0] if exc.args else str(exc)) from None
    click.echo(text, nl=False)


@framework_cli.command("list")
def list_command() -> None:
    """List the bundled frameworks."""
    for name in available_frameworks():
        try:
            title = get_framework(name).title
        except FrameworkInvalid:
            title = "(invalid: run 'escalate framework check' on its file)"
        click.echo(f"{name}\t{title}")
