"""The PDF job: made from the stored HTML after commit, hashed, once."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import sqlalchemy as sa

from tests.letters.conftest import DUE
from workflow_app.extensions import db
from workflow_app.letters import issue_letter, verify_letter
from workflow_app.letters.pdf import render_pending_pdfs, sha256_hex
from workflow_app.models.letters import Letter


@pytest.fixture
def issued(app, make_decision, people):
    decision = make_decision()
    letter = issue_letter(
        case=decision.case,
        decision=decision,
        kind="escalation_2a",
        issued_by=people["ceo"],
        response_due_at=DUE,
    )
    db.session.commit()
    return letter


def test_pending_pdfs_are_made_from_the_stored_html_once(issued):
    assert render_pending_pdfs() == 1
    letter = db.session.get(Letter, issued.id)
    assert letter.pdf.startswith(b"%PDF")
    assert letter.pdf_sha256 == sha256_hex(letter.pdf)
    assert verify_letter(letter)
    first = letter.pdf
    assert render_pending_pdfs() == 0
    db.session.expire_all()
    assert db.session.get(Letter, issued.id).pdf == first


def test_a_letter_whose_html_was_tampered_with_gets_no_pdf(issued):
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        db.session.execute(sa.text("ALTER TABLE letters DISABLE TRIGGER letters_immutable_guard"))
    else:
        db.session.execute(sa.text("DROP TRIGGER letters_no_change"))
    db.session.execute(sa.text("UPDATE letters SET html = html || ' '"))
    db.session.commit()
    try:
        assert render_pending_pdfs() == 0
        assert not verify_letter(issued)
        assert db.session.scalar(sa.select(Letter.pdf).where(Letter.id == issued.id)) is None
    finally:
        db.session.rollback()
        if postgres:  # the schema outlives the test on PostgreSQL: put the guard back
            db.session.execute(
                sa.text("ALTER TABLE letters ENABLE TRIGGER letters_immutable_guard")
            )
            db.session.commit()


def test_a_pdf_page_renders_to_png(issued, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian poppler-utils) is not installed")
    render_pending_pdfs()
    pdf = db.session.scalar(sa.select(Letter.pdf).where(Letter.id == issued.id))
    (tmp_path / "letter.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "letter.pdf", "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages, "pdftoppm wrote no page"
    data = pages[0].read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000
