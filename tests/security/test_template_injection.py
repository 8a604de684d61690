"""Check 20 (RELIABILITY-ANCHORS section 7): template injection in letter templates.

Letter templates are files (``letters/``), rendered in the immutable sandbox; people's text
reaches them only as data (tests/letters/test_render.py covers that and the first escapes).
Here: the whole corpus of the check, secret leaks, text that looks like a template, and a
hypothesis fuzz of the validator (compiling a folder) and the renderer with 0 exceptions
other than the defined ones (``jinja2.TemplateError`` and ``LetterError`` subclasses).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError

from workflow_app.letters.render import (
    MAX_OUTPUT_CHARS,
    LetterError,
    LetterRenderer,
    LetterRenderFailed,
    LetterTemplateInvalid,
)

FUZZ_EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "full" else 100
SECRET = "s3cret-signing-key-that-must-never-appear"

#: The corpus of check 20 and its relatives: each must raise a defined error, or render
#: something harmless (no object, class or function shown, nothing from outside the context).
CORPUS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    '{{ "{0.__class__}".format(1) }}',
    "{{ '{0.__class__}'.format_map({'0': 1}) }}",
    "{{ '{0.__class__}'.format_map(data) }}",
    "{{ name.format('{0.__class__}') }}",
    "{{ (name|attr('format'))('{0.__class__}') }}",
    "{{ ('{0.__class__}'|attr('format'))(name) }}",
    "{{ name.__init__.__globals__ }}",
    "{{ lipsum.__globals__.os }}",
    "{{ self.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ config }}",
    "{{ request.environ }}",
    "{{ g }}",
    "{% include '/etc/passwd' %}",
    "{% include '../config.py' %}",
    "{% extends '../../../etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ items.pop() }}",
    "{{ data.update({'a': 1}) }}",
    "{{ name.__class__.__base__.__subclasses__() }}",
    "{{ range.__self__ }}",
]
#: The ones that must be refused outright, with the error that refuses them.
REFUSED = {
    "{{ ''.__class__.__mro__ }}": SecurityError,
    '{{ "{0.__class__}".format(1) }}': SecurityError,
    "{{ name.__init__.__globals__ }}": SecurityError,
    "{{ cycler.__init__.__globals__ }}": SecurityError,
    "{{ lipsum.__globals__.os }}": SecurityError,
    "{% for i in range(10**9) %}x{% endfor %}": LetterRenderFailed,  # sandbox MAX_RANGE
    "{{ 'x' * 10**9 }}": SecurityError,
    "{{ config }}": UndefinedError,
    "{% include '/etc/passwd' %}": TemplateNotFound,
    "{% include '../config.py' %}": TemplateNotFound,
    "{{ items.pop() }}": SecurityError,
    "{{ data.update({'a': 1}) }}": SecurityError,
}
CONTEXT = {"name": "Unit B", "items": [1, 2], "data": {"b": 2}}


def _harmless(output: str) -> bool:
    return not any(mark in output for mark in ("<class", "<function", "<built-in", "<module"))


def test_every_escape_of_the_corpus_is_stopped(tmp_path):
    for n, source in enumerate(CORPUS):
        (tmp_path / f"evil{n}.html").write_text(source)
    renderer = LetterRenderer(tmp_path)
    problems = []
    for n, source in enumerate(CORPUS):
        try:
            output = renderer.render(f"evil{n}", CONTEXT)
        except (TemplateError, LetterError) as error:
            expected = REFUSED.get(source)
            if expected is not None and not isinstance(error, expected):
                problems.append(f"{source}: {type(error).__name__}, expected {expected.__name__}")
            continue
        if source in REFUSED or not _harmless(output):
            problems.append(f"{source}: rendered {output[:80]!r}")
    assert problems == []


def test_a_rendered_letter_cannot_reach_the_app_config_or_environment(app, tmp_path):
    app.config["SECRET_KEY"] = SECRET
    os.environ["ESCALATE_TEST_CANARY"] = SECRET
    try:
        probes = [
            "{{ config.SECRET_KEY }}",
            "{{ self._TemplateReference__context }}",
            "{{ self }}",
            "{{ joiner().__init__ }}",
            "{% for k, v in self._TemplateReference__context.items() %}{{ v }}{% endfor %}",
            "{{ dict(a=1).__class__.__init__.__globals__ }}",
        ]
        for n, probe in enumerate(probes):
            (tmp_path / f"p{n}.html").write_text(probe)
        renderer = LetterRenderer(tmp_path)
        for n in range(len(probes)):
            try:
                output = renderer.render(f"p{n}", {"name": "x"})
            except (TemplateError, LetterError):
                continue
            assert SECRET not in output
            assert _harmless(output), output
    finally:
        del os.environ["ESCALATE_TEST_CANARY"]


def test_text_that_looks_like_a_template_is_shown_as_text(app, tmp_path):
    (tmp_path / "letter.html").write_text("<p>{{ reason }}</p>")
    payload = "{{ ''.__class__.__mro__ }}{% include '/etc/passwd' %}<script>x</script>"
    output = LetterRenderer(tmp_path).render("letter", {"reason": payload})
    assert "{{ &#39;&#39;.__class__.__mro__ }}" in output
    assert "<script>" not in output and "&lt;script&gt;" in output


# --- fuzz -------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "{{ ", " }}", "{% ", " %}", "{# ", " #}", "name", "items", "data", "1", "0", "10**9",
        "'x'", "*", "/", "+", "|", "upper", "attr('format')", "format", ".", "__class__",
        "__mro__", "[1]", "(", ")", "for i in items", "endfor", "if name", "endif", "range(",
        "include 'a'", "set x = 1", "x", "e", "safe", "join(", "}}", "%}", "<p>", "\n",
        "lipsum", "cycler", "self", "dict(", "items[0]", "data.b", "'{0}'", "~", "is", "defined",
        "macro m()", "endmacro", "m()", "call", "raw", "endraw", "-", "%", "//", "not", "in",
    ]
)  # fmt: skip
SOURCES = st.one_of(
    st.lists(FRAGMENTS, max_size=14).map("".join),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(source=SOURCES)
def test_fuzzed_templates_raise_only_the_defined_errors(tmp_path, source):
    folder = tmp_path / f"f{abs(hash(source))}"
    folder.mkdir(exist_ok=True)
    (folder / "fuzz.html").write_text(source, encoding="utf-8")
    renderer = LetterRenderer(folder)
    try:
        renderer.validate()
    except LetterTemplateInvalid:
        return  # refused as a whole: the defined validation error
    try:
        output = renderer.render("fuzz", CONTEXT)
    except (TemplateError, LetterError):
        return
    assert len(output) <= MAX_OUTPUT_CHARS
    assert _harmless(output), output
