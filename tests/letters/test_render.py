"""Rendering every letter kind in the sandbox: content, escaping, sandbox and limits."""

from __future__ import annotations

import html as htmllib

import pytest
from jinja2.exceptions import SecurityError

from state_machines import get_framework
from tests.letters.conftest import DUE
from workflow_app.letters.render import (
    MAX_OUTPUT_CHARS,
    LetterRenderer,
    LetterTemplateInvalid,
    LetterTooLarge,
    UnknownLetterKind,
    default_renderer,
    framework_letter_kinds,
    letter_context,
    render_letter,
)

# kind -> (framework, track, from, to, decision kind)
KINDS = {
    "escalation_2a": ("iqpf", "performance", "1", "2a", "escalate"),
    "escalation_2b": ("iqpf", "finance", "1", "2b", "escalate"),
    "escalation_3": ("iqpf", "performance", "2a", "3", "escalate"),
    "de_escalation": ("iqpf", "performance", "2a", "1", "de_escalate"),
    "chair_letter": ("iqpf", "performance", "2a", "2a", "review"),
    "escalation": ("nhs_wales", "quality", "1", "2", "escalate"),
    "escalation_enhanced_monitoring": ("nhs_wales", "quality", "2", "3", "escalate"),
    "escalation_targeted_intervention": ("nhs_wales", "finance", "3", "4", "escalate"),
    "escalation_special_measures": ("nhs_wales", "leadership", "4", "5", "escalate"),
    "letter_of_concern": ("nhs_wales", "quality", "2", "2", "notice"),
    "performance_notice": ("nhs_wales", "delivery", "1", "1", "notice"),
    "improvement_plan_required": (
        "system_tiers",
        "measure:RTT18",
        "monitor",
        "improvement_plan",
        "escalate",
    ),
    "escalation_first_level": (
        "system_tiers",
        "measure:RTT18",
        "improvement_plan",
        "first_level",
        "escalate",
    ),
    "escalation_second_level": (
        "system_tiers",
        "measure:RTT18",
        "first_level",
        "second_level",
        "escalate",
    ),
    "escalation_icb": ("system_tiers", "measure:RTT18", "second_level", "icb", "escalate"),
}


def test_every_framework_letter_kind_has_a_template_and_all_compile():
    assert set(KINDS) == framework_letter_kinds()
    assert set(default_renderer().kinds) == set(KINDS)
    default_renderer().validate()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_names_reasons_deadline_monitoring_and_signatures(kind, app, make_decision):
    framework_name, track, from_level, to_level, decision_kind = KINDS[kind]
    decision = make_decision(framework_name, track, from_level, to_level, kind=decision_kind)
    context = letter_context(decision, response_due_at=DUE)
    context["reference"] = "ESC/TEST/2026-11/1"
    page = htmllib.unescape(render_letter(kind, context))

    # letterhead: organisation, addressee (the unit lead), copies, reference, date
    assert app.config["ORGANISATION_NAME"] in page
    assert "Lee Lead" in page
    assert "Eve Executive, Accountable executive" in page
    assert "Bea Budget, Budget holder" in page
    assert "ESC/TEST/2026-11/1" in page
    assert decision.case.unit.name in page
    assert "size: A4" in page
    # the reasons and the evidence (measures, months, values)
    assert "missed trajectory for three consecutive months" in page
    assert "Cancer 62-day performance has deteriorated" in page
    if kind != "chair_letter":
        assert "RTT within 18 weeks" in page
        assert "October 2026" in page
        assert "70.2" in page
    # the response deadline
    assert "7 December 2026" in page
    # the monitoring that applies
    level = get_framework(framework_name).levels[to_level]
    expected_monitoring = level.monitoring or level.description
    assert " ".join(expected_monitoring.split()) in " ".join(page.split())
    for key in level.cadence:
        assert key.replace("_", " ")[1:] in page
    # the signature block: printed name, role, date and time, meaning, delegation
    assert "Carol Chief" in page
    assert "Chief Executive" in page
    assert "14 November 2026 at 11:30 GMT" in page
    assert "Approved on behalf of the Executive Team at Executive Team 14 November 2026" in page
    assert "Dana Delegate" in page
    assert "14 November 2026 at 12:05 GMT" in page
    assert "Signed by Dana Delegate as delegate of Carol Chief" in page
    assert "Meaning of signature" in page


def test_escalation_letters_cite_the_framework_section(app, make_decision, create_domain):
    create_domain("access_activity", "Access & Activity")
    decision = make_decision()
    page = htmllib.unescape(render_letter("escalation_2a", letter_context(decision)))
    assert "Integrated Quality & Performance Framework, section 7.8" in page
    assert "Areas of concern" in page
    assert "Access & Activity" in page  # the domains' titles
    assert "Quality safety experience" in page  # no domain row: the code, readable
    assert "recovery plan" in page


def test_summer_signatures_show_british_summer_time(app, make_decision, people):
    from datetime import UTC, datetime

    decision = make_decision()
    decision.signatures[0].signed_at = datetime(2026, 7, 1, 9, 15, tzinfo=UTC)
    page = render_letter("escalation_2a", letter_context(decision))
    assert "1 July 2026 at 10:15 BST" in page


def test_user_text_is_escaped_and_never_evaluated(app, make_decision):
    hostile = "<script>alert('x')</script> {{ 7*7 }} {% if true %}yes{% endif %} ${7*7}"
    decision = make_decision(reason=hostile, meeting_reference="Exec {{ 7*7 }} <b>bold</b>")
    page = render_letter("escalation_2a", letter_context(decision, response_due_at=DUE))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "{{ 7*7 }}" in page
    assert "{% if true %}yes{% endif %}" in page
    assert "49" not in page
    assert "<b>bold</b>" not in page
    assert "Exec {{ 7*7 }} &lt;b&gt;bold&lt;/b&gt;" in page


def test_extra_context_is_data_too(app, make_decision):
    decision = make_decision()
    context = letter_context(
        decision,
        extra={"support_options": ["<img src=x onerror=alert(1)> {{ 7*7 }}"]},
    )
    page = render_letter("escalation_3", context)
    assert "&lt;img src=x onerror=alert(1)&gt; {{ 7*7 }}" in page
    assert "49" not in page


def test_context_is_plain_data(app, make_decision):
    decision = make_decision()
    context = letter_context(decision)
    with pytest.raises(TypeError, match="plain data"):
        render_letter("escalation_2a", {**context, "decision": decision})


def test_unknown_kinds_are_refused(app, make_decision):
    context = letter_context(make_decision())
    for kind in ("nope", "_letterhead", "../letters/escalation_2a", "escalation_2a.html", ""):
        with pytest.raises(UnknownLetterKind, match="unknown letter kind"):
            render_letter(kind, context)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__class__ }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_the_sandbox_refuses_unsafe_access(tmp_path, source):
    (tmp_path / "evil.html").write_text(source)
    renderer = LetterRenderer(tmp_path)
    with pytest.raises(SecurityError):
        renderer.render("evil", {"x": "text"})


def test_the_sandbox_context_cannot_be_mutated(tmp_path):
    (tmp_path / "mutate.html").write_text("{{ items.append(1) }}{{ items }}")
    with pytest.raises(SecurityError):
        LetterRenderer(tmp_path).render("mutate", {"items": []})


def test_output_size_and_repetition_are_capped(tmp_path):
    (tmp_path / "big.html").write_text("{% for i in range(100000) %}{{ line }}{% endfor %}")
    (tmp_path / "repeat.html").write_text("{{ 'x' * 100000000 }}")
    (tmp_path / "power.html").write_text("{{ 10 ** 100000 }}")
    renderer = LetterRenderer(tmp_path)
    with pytest.raises(LetterTooLarge):
        renderer.render("big", {"line": "y" * 100})
    assert MAX_OUTPUT_CHARS < 100 * 100000
    with pytest.raises(SecurityError):
        renderer.render("repeat", {})
    with pytest.raises(SecurityError):
        renderer.render("power", {})


def test_a_folder_with_a_broken_or_missing_template_is_refused(tmp_path):
    (tmp_path / "good.html").write_text("ok")
    (tmp_path / "broken.html").write_text("{% if %}")
    with pytest.raises(LetterTemplateInvalid, match="broken.html"):
        LetterRenderer(tmp_path).render("good", {})
    (tmp_path / "broken.html").unlink()
    with pytest.raises(LetterTemplateInvalid, match="escalation_9"):
        LetterRenderer(tmp_path, {"good", "escalation_9"}).validate()
    assert LetterRenderer(tmp_path, {"good"}).render("good", {}) == "ok"
