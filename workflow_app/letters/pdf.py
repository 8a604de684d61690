"""Making the PDF of each issued letter from its stored HTML (a job step, after commit).

DESIGN.md principle 4: the HTML is rendered and hashed in the decision's transaction; the PDF
is made afterwards from the *stored* HTML, never re-rendered from the template, and hashed
too. :func:`render_pending_pdfs` is called by the scheduler sweep and is safe to run in several
processes at once: each PDF is written with ``UPDATE ... WHERE id = ? AND pdf IS NULL``, and a
row count of 0 means another worker got there first (its PDF stands; ours is dropped).
"""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.letters import Letter

log = logging.getLogger(__name__)


def _url_fetcher():
    """A fetcher that loads nothing from outside the letter: only ``data:`` URLs."""
    try:
        from weasyprint import URLFetcher  # WeasyPrint >= 68

        return URLFetcher(allowed_protocols={"data"}, timeout=5)
    except ImportError:  # pragma: no cover - older WeasyPrint
        from weasyprint import default_url_fetcher

        def fetch(url, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"letters load no external resources: {url}")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch


def html_to_pdf(html: str) -> bytes:
    """Render one letter's HTML to PDF bytes with WeasyPrint (A4, from the letter's own
    print stylesheet)."""
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=_url_fetcher()).write_pdf()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_pending_pdfs(limit: int = 20) -> int:
    """Make the PDF of up to ``limit`` letters that have none yet; commit after each one.

    A letter whose stored HTML no longer matches its hash is skipped (and logged): a PDF is
    never made from tampered HTML. A letter that fails to render fails alone.

    :returns: how many PDFs this call stored.
    """
    ids = db.session.scalars(
        sa.select(Letter.id).where(Letter.pdf.is_(None)).order_by(Letter.id).limit(limit)
    ).all()
    db.session.rollback()  # no transaction stays open while rendering
    stored = 0
    for letter_id in ids:
        row = db.session.execute(
            sa.select(Letter.html, Letter.html_sha256, Letter.reference).where(
                Letter.id == letter_id, Letter.pdf.is_(None)
            )
        ).first()
        db.session.rollback()
        if row is None:
            continue  # another worker made it meanwhile
        if sha256_hex(row.html.encode("utf-8")) != row.html_sha256:
            log.error("letter %s: stored HTML does not match its hash; no PDF made", row.reference)
            continue
        try:
            pdf = html_to_pdf(row.html)
        except Exception:
            log.exception("letter %s: PDF rendering failed", row.reference)
            continue
        try:
            result = db.session.execute(
                sa.update(Letter)
                .where(Letter.id == letter_id, Letter.pdf.is_(None))
                .values(pdf=pdf, pdf_sha256=sha256_hex(pdf))
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("letter %s: storing the PDF failed", row.reference)
            continue
        if result.rowcount == 1:
            stored += 1
        else:
            log.info("letter %s: PDF already made by another worker", row.reference)
    return stored
