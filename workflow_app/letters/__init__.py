"""Formal letters: templates in the top-level ``letters/`` folder rendered in Jinja's sandbox
(:mod:`.render`), stored immutable with their hashes (:mod:`.store`), and turned into PDF from
the stored HTML by a job (:mod:`.pdf`)."""

from workflow_app.letters.render import (
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    LetterError,
    LetterRenderer,
    LetterRenderTimeout,
    LetterTemplateInvalid,
    LetterTooLarge,
    UnknownLetterKind,
    letter_context,
    render_letter,
)
from workflow_app.letters.store import (
    LetterAlreadyIssued,
    LetterAlreadySuperseded,
    issue_letter,
    reissue_letter,
    verify_letter,
)

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "LetterAlreadyIssued",
    "LetterAlreadySuperseded",
    "LetterError",
    "LetterRenderTimeout",
    "LetterRenderer",
    "LetterTemplateInvalid",
    "LetterTooLarge",
    "UnknownLetterKind",
    "issue_letter",
    "letter_context",
    "reissue_letter",
    "render_letter",
    "verify_letter",
]
