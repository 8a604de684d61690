"""Loading and validating framework files, and ``escalate framework`` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from state_machines import (
    Framework,
    FrameworkError,
    FrameworkInvalid,
    available_frameworks,
    get_framework,
    load_framework,
    parse_duration,
    validate_framework_data,
)
from state_machines.framework import FRAMEWORKS_DIR

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLED = ["iqpf", "nhs_wales", "system_tiers"]


def errors_of(name: str) -> list[FrameworkError]:
    with pytest.raises(FrameworkInvalid) as info:
        load_framework(FIXTURES / name)
    assert info.value.errors, "FrameworkInvalid must carry its errors"
    return info.value.errors


def find(errors: list[FrameworkError], path: str) -> FrameworkError:
    matches = [e for e in errors if e.path == path]
    assert matches, f"no error at {path!r}; got: {[str(e) for e in errors]}"
    return matches[0]


# -- bundled frameworks ----------------------------------------------------------------------


def test_available_frameworks_lists_bundled_files_sorted():
    assert available_frameworks() == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_framework_has_no_errors(name):
    data = yaml.safe_load((FRAMEWORKS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert validate_framework_data(data, f"{name}.yaml") == []
    framework = get_framework(name)
    assert isinstance(framework, Framework)
    assert framework.name == name
    assert framework.source
    assert len(framework.smart_labels) == 5


def test_get_framework_is_cached():
    assert get_framework("iqpf") is get_framework("iqpf")


def test_get_framework_unknown_name_raises_key_error():
    with pytest.raises(KeyError, match="no framework called 'nope'"):
        get_framework("nope")
    with pytest.raises(KeyError):
        get_framework("../etc/passwd")


def test_iqpf_shape():
    f = get_framework("iqpf")
    assert f.tracks["performance"].levels == ("1", "2a", "3")
    assert f.tracks["finance"].levels == ("1", "2b", "3")
    assert f.signatures["executive_team"].any_of == ("executive_director", "ceo")
    assert f.signatures["executive_team"].record_meeting is True
    assert f.signatures["ceo"].count == 1
    assert f.transition("performance", "2a", "3").trigger == "move_2a_to_3"
    assert f.transition("performance", "2a", "3").direction == "up"
    assert f.transition("finance", "2b", "1").direction == "down"
    assert f.transition("finance", "1", "2a") is None
    assert f.initial_level("finance") == "1"
    assert f.level_title("2b") == "Level 2b (Financial)"
    assert f.deescalation_max_steps == 1
    assert f.smart_labels == ("specific", "measurable", "achievable", "relevant", "time_bound")
    # finance thresholds are data, not code (seed 000, 7.8 table)
    overspend = next(t for t in f.triggers if t["id"] == "finance_overspend")
    limits = {c["signal"]: c["greater_than"] for c in overspend["when_any"]}
    assert limits == {"ytd_overspend": 500000, "forecast_overspend": 1000000}
    on_2b = f.consequences["on_enter"]["2b"]
    assert on_2b["meeting"]["optional"]["supporting_team_members"]["max"] == 3
    assert parse_duration(on_2b["review_period_if_plan_failing"]) == parse_duration("2 months")
    options = f.levels["3"].support_options
    assert options["chosen_by"] == "ceo"
    assert set(options["options"]) == {
        "independent_review",
        "leadership_change",
        "hr_policies",
        "ceo_progress_meetings",
    }
    assert f.base_cadence["executive_committee"]["every"] == "2 weeks"
    assert f.calendar == {
        "holidays": ["england", "wales"],
        "timezone": "Europe/London",
        "due_time": "17:00",
        "reminder_time": "08:00",
    }


def test_iqpf_consequences_for_follow_direction():
    f = get_framework("iqpf")
    assert f.consequences_for(f.transition("finance", "1", "2b"))["letter"] == "escalation_2b"
    assert f.consequences_for(f.transition("finance", "3", "2b"))["letter"] == "de_escalation"


def test_nhs_wales_shape():
    f = get_framework("nhs_wales")
    assert set(f.tracks) == {"quality", "workforce", "finance", "delivery", "leadership"}
    assert all(t.levels == ("1", "2", "3", "4", "5") for t in f.tracks.values())
    assert [f.level_title(str(i)) for i in range(1, 6)] == [
        "Routine arrangements",
        "Areas of concern",
        "Enhanced monitoring",
        "Targeted intervention",
        "Special measures",
    ]
    reviews = [f.levels[str(i)].cadence["ceo_executive_review"] for i in range(1, 6)]
    assert reviews == ["6 months", "6 months", "3 months", "2 months", "1 month"]
    assert {lvl.cadence["oversight_touchpoint"] for lvl in f.levels.values()} == {"1 month"}
    assert set(f.roles) == {"director_general", "minister"}
    # escalation may jump; de-escalation one level at a time (seed 004, 9.1)
    assert f.transition("quality", "1", "5") is not None
    assert f.transition("quality", "5", "3") is None
    # decision rights by the level moved to (seed 004, 7.3)
    for t in f.transitions:
        rule = f.signatures[t.signed_by]
        if t.to_level in ("4", "5"):
            assert rule.sequence == ("director_general", "minister")
        else:
            assert rule.any_of == ("director_general",)
    assert f.formal_notifications["allowed_at"] == ["1", "2"]
    assert len(f.transitions) == 5 * 14


def test_system_tiers_shape():
    f = get_framework("system_tiers")
    track = f.track_for("measure:RTT18")
    assert track.name == "measure"
    assert track.per_measure is True
    assert track.levels == (
        "performing",
        "monitor",
        "improvement_plan",
        "first_level",
        "second_level",
        "icb",
    )
    assert f.initial_level("measure:RTT18") == "performing"
    assert f.smart_labels == ("specific", "measurable", "agreed", "realistic", "time_bound")
    month_rules = {t["propose"].get("to"): t for t in f.triggers}
    assert month_rules["monitor"]["when_all"][0]["at_least"] == 1
    assert month_rules["improvement_plan"]["when_any"][0]["at_least"] == 2


def test_track_for_unknown_key_is_a_clear_key_error():
    with pytest.raises(KeyError, match="no track 'budget'"):
        get_framework("iqpf").track_for("budget")
    with pytest.raises(KeyError, match="measure:<MEASURE_CODE>"):
        get_framework("system_tiers").track_for("RTT18")
    with pytest.raises(KeyError):
        get_framework("iqpf").track_for("performance:RTT18")  # not a per-measure track


def test_valid_minimal_fixture_expands_wildcards():
    f = load_framework(FIXTURES / "valid_minimal.yaml")
    downs = {(t.track, t.from_level, t.to_level) for t in f.transitions if t.direction == "down"}
    assert downs == {
        ("performance", "2a", "1"),
        ("performance", "3", "2a"),
        ("finance", "2b", "1"),
        ("finance", "3", "2b"),
    }
    assert f.tracks["finance"].title == "Finance"


def test_integer_level_ids_are_read_as_text():
    data = yaml.safe_load((FIXTURES / "valid_minimal.yaml").read_text())
    data["tracks"]["finance"] = [1, "2b", 3]
    assert validate_framework_data(data) == []


# -- one fixture per error class -------------------------------------------------------------


def test_missing_required_keys():
    errors = errors_of("missing_keys.yaml")
    for key in ("title", "levels", "signatures"):
        assert find(errors, key).message == f"required key {key!r} is missing"


def test_unknown_level_everywhere_it_is_referenced():
    errors = errors_of("unknown_level.yaml")
    for path in ("transitions[1].to", "triggers[0].propose.to", "consequences.on_enter.2c"):
        assert "unknown level '2c'" in find(errors, path).message
    assert len(errors) == 3


def test_track_level_not_declared():
    errors = errors_of("track_level_undeclared.yaml")
    err = find(errors, "tracks.finance[1]")
    assert "unknown level '2c'" in err.message
    assert "not declared under 'levels'" in err.message


def test_unreachable_level():
    errors = errors_of("unreachable.yaml")
    err = find(errors, "tracks.performance.levels[2]")
    assert "can never be reached" in err.message
    assert "'1'" in err.message


def test_transition_to_nowhere_and_from_off_track():
    errors = errors_of("to_nowhere.yaml")
    assert "transition to nowhere" in find(errors, "transitions[2].to").message
    assert "not on the finance track" in find(errors, "transitions[3].from").message


def test_missing_decision_right():
    errors = errors_of("missing_decision_right.yaml")
    assert "missing decision right" in find(errors, "transitions[0].signed_by").message
    err = find(errors, "transitions[1].signed_by")
    assert "'executive_board'" in err.message
    assert "missing decision right" in err.message


def test_undeclared_role_in_signature_rule():
    errors = errors_of("undeclared_role.yaml")
    assert (
        "unknown role 'chief_nurse'" in find(errors, "signatures.executive_team.any_of[0]").message
    )
    assert "unknown role 'minister'" in find(errors, "signatures.ministerial.sequence[1]").message
    assert len(errors) == 2  # director_general is declared under roles:


def test_deescalation_skipping_levels():
    errors = errors_of("skips_down.yaml")
    assert "moves down 2 levels" in find(errors, "transitions[4]").message
    # the "*" rule without steps: 1 is caught after expansion
    assert "from 3 to 1" in find(errors, "transitions[6]").message
    assert len(errors) == 2


def test_deescalation_max_steps_can_allow_more():
    data = yaml.safe_load((FIXTURES / "skips_down.yaml").read_text())
    data["deescalation"] = {"max_steps": 2}
    assert validate_framework_data(data) == []


def test_duplicate_transition():
    errors = errors_of("duplicate_transition.yaml")
    assert "already declared by transitions[0]" in find(errors, "transitions[2]").message


def test_yaml_syntax_error_has_line_information():
    errors = errors_of("yaml_syntax.yaml")
    assert len(errors) == 1
    assert errors[0].path == "<yaml>"
    assert errors[0].message.startswith("line 8, column 1:")
    assert "not valid YAML" in errors[0].message


def test_duplicate_yaml_key_is_reported():
    errors = errors_of("duplicate_yaml_key.yaml")
    err = find(errors, "<yaml>")
    assert "line 11" in err.message
    assert "'2a' appears twice" in err.message


def test_wrong_types():
    errors = errors_of("wrong_types.yaml")
    assert "must be the list of the track's levels" in find(errors, "tracks.performance").message
    assert "must be some text" in find(errors, "title").message
    assert "must be a list" in find(errors, "domains").message
    assert "whole number" in find(errors, "signatures.ceo.count").message
    # no knock-on noise about levels "unused" when the track itself could not be read
    assert not [e for e in errors if e.path.startswith("levels.")]


def test_several_errors_are_all_reported():
    errors = errors_of("several_errors.yaml")
    assert {e.path for e in errors} == {
        "signatures.executive_team.any_of[0]",
        "transitions[1].to",
        "transitions[2].signed_by",
        "transitions[3]",
        "calendar.due_time",
    }


def test_framework_invalid_str_lists_every_error_one_per_line():
    with pytest.raises(FrameworkInvalid) as info:
        load_framework(FIXTURES / "several_errors.yaml")
    lines = str(info.value).splitlines()
    assert lines == [str(e) for e in info.value.errors]
    assert lines[0].startswith("signatures.executive_team.any_of[0]: ")


def test_missing_file():
    with pytest.raises(FrameworkInvalid) as info:
        load_framework(FIXTURES / "does_not_exist.yaml")
    assert info.value.errors[0].path == "<file>"


def test_error_str_is_path_colon_message():
    assert str(FrameworkError("levels.2c", "oops")) == "levels.2c: oops"


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d.update(framework="Bad Name"), "framework", "lower-case"),
        (lambda d: d.update(extra_key=1), "extra_key", "unknown key"),
        (lambda d: d["levels"]["1"].pop("title"), "levels.1.title", "must be some text"),
        (
            lambda d: d["transitions"][0].update(direction="sideways"),
            "transitions[0].direction",
            "'up' or 'down'",
        ),
        (lambda d: d["transitions"][0].update(to="1"), "transitions[0]", "same level"),
        (
            lambda d: d["transitions"][0].update(track="budget"),
            "transitions[0].track",
            "unknown track 'budget'",
        ),
        (
            lambda d: d.update(calendar={"timezone": "Mars/Olympus"}),
            "calendar.timezone",
            "unknown time zone",
        ),
        (
            lambda d: d.update(calendar={"holidays": ["narnia"]}),
            "calendar.holidays[0]",
            "unknown bank-holiday calendar",
        ),
        (
            lambda d: d.update(reminders={"before_due": ["soon"]}),
            "reminders.before_due[0]",
            "not a duration",
        ),
        (lambda d: d.update(roles={"ceo": "Boss"}), "roles.ceo", "already a built-in role"),
        (lambda d: d.update(smart_labels=["a", "b"]), "smart_labels", "five SMART words"),
        (
            lambda d: d["transitions"].append(
                {
                    "track": "finance",
                    "from": "1",
                    "to": "3",
                    "steps": 1,
                    "signed_by": "executive_team",
                }
            ),
            "transitions[5].steps",
            "moves 2 level(s)",
        ),
    ],
)
def test_other_validation_rules(mutate, path, fragment):
    data = yaml.safe_load((FIXTURES / "valid_minimal.yaml").read_text())
    mutate(data)
    errors = validate_framework_data(data)
    assert fragment in find(errors, path).message


def test_non_mapping_root():
    assert validate_framework_data(["a"])[0].path == "<root>"  # type: ignore[arg-type]


def test_parse_duration():
    assert parse_duration("10 working days").unit == "working_days"
    assert parse_duration("1 week").amount == 1
    assert str(parse_duration("2 months")) == "2 months"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("fortnightly")


# -- escalate framework ... ------------------------------------------------------------------


@pytest.fixture
def framework_cli():
    from workflow_app.cli.framework import framework_cli

    return framework_cli


def test_cli_check_ok(framework_cli):
    result = CliRunner().invoke(framework_cli, ["check", str(FRAMEWORKS_DIR / "iqpf.yaml")])
    assert result.exit_code == 0
    assert result.output == "OK: iqpf (2 tracks, 4 levels, 9 transitions)\n"


def test_cli_check_reports_every_error_on_stderr(framework_cli):
    result = CliRunner().invoke(framework_cli, ["check", str(FIXTURES / "several_errors.yaml")])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("signatures.executive_team.any_of[0]: unknown role")


def test_cli_check_missing_file(framework_cli):
    result = CliRunner().invoke(framework_cli, ["check", str(FIXTURES / "nope.yaml")])
    assert result.exit_code == 1
    assert result.stderr.startswith("<file>: ")


def test_cli_list(framework_cli):
    result = CliRunner().invoke(framework_cli, ["list"])
    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.output.splitlines()] == BUNDLED


def test_cli_diagram_mermaid(framework_cli):
    result = CliRunner().invoke(
        framework_cli, ["diagram", "iqpf", "--track", "finance", "--current", "finance=2b"]
    )
    assert result.exit_code == 0, result.output
    assert "flowchart LR" in result.output
    assert "class finance__2b current" in result.output
    assert "performance__" not in result.output


def test_cli_diagram_from_path(framework_cli):
    result = CliRunner().invoke(framework_cli, ["diagram", str(FIXTURES / "valid_minimal.yaml")])
    assert result.exit_code == 0, result.output
    assert 'subgraph track_finance["Finance"]' in result.output


def test_cli_diagram_invalid_file_and_unknown_name(framework_cli):
    result = CliRunner().invoke(
        framework_cli, ["diagram", str(FIXTURES / "duplicate_transition.yaml")]
    )
    assert result.exit_code == 1
    assert "transitions[2]: duplicate transition" in result.stderr
    result = CliRunner().invoke(framework_cli, ["diagram", "nope"])
    assert result.exit_code == 1
    assert "no framework called 'nope'" in result.stderr


def test_cli_diagram_unknown_track(framework_cli):
    result = CliRunner().invoke(framework_cli, ["diagram", "iqpf", "--track", "budget"])
    assert result.exit_code == 1
    assert "no track 'budget'" in result.stderr


def test_cli_diagram_svg(framework_cli, monkeypatch):
    import shutil

    if shutil.which("dot") is None:
        result = CliRunner().invoke(framework_cli, ["diagram", "iqpf", "--svg"])
        assert result.exit_code == 1
        assert "graphviz" in result.stderr
        return
    result = CliRunner().invoke(framework_cli, ["diagram", "iqpf", "--svg"])
    assert result.exit_code == 0
    assert result.output.startswith("<svg")
    monkeypatch.setattr("state_machines.diagrams.shutil.which", lambda name: None)
    result = CliRunner().invoke(framework_cli, ["diagram", "iqpf", "--svg"])
    assert result.exit_code == 1
    assert "install Debian's graphviz" in result.stderr
