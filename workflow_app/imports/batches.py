"""Upload -> preview -> load (or discard): the import batch lifecycle.

The uploaded bytes are kept on the batch, so "Load" loads exactly the file that was
previewed, and a batch can be loaded once only (a second confirm is refused).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date

import sqlalchemy as sa

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.imports.load import LoadResult, load_rows
from workflow_app.imports.parse import ParsedFile, parse_file
from workflow_app.imports.validate import validate
from workflow_app.models.imports import ImportBatch
from workflow_app.models.org import Person
from workflow_app.permissions import can_manage_units
from workflow_app.services.errors import Conflict, ServiceError, require


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_file(content: bytes, filename: str, *, today: date | None = None) -> ParsedFile:
    """Parse and validate (reads the database, writes nothing).

    :raises UnreadableFile: not a CSV/XLSX file that can be opened.
    :raises ServiceError: the header (or the file as a whole) is wrong.
    """
    parsed = parse_file(content, filename)
    if parsed.problems:
        raise ServiceError(" ".join(str(p) for p in parsed.problems))
    validate(parsed, today=today)
    return parsed


def create_batch(
    actor: Person, filename: str, content: bytes, *, today: date | None = None
) -> ImportBatch:
    """Check an uploaded file and keep it as a ``previewed`` batch. No data is stored."""
    require(can_manage_units(actor), "Only the performance team can upload data")
    parsed = check_file(content, filename, today=today)
    problems = parsed.all_problems
    batch = ImportBatch(
        filename=filename[:255],
        sha256=sha256_of(content),
        kind=parsed.kind,
        layout=parsed.layout[:80],
        uploaded_by_id=actor.id,
        uploaded_at=utcnow(),
        status="previewed",
        content=content,
        row_count=len(parsed.rows),
        problem_count=len(problems),
        problems_json=json.dumps([p.as_dict() for p in problems]),
    )
    db.session.add(batch)
    db.session.flush()
    return batch


def valid_row_count(batch: ImportBatch) -> int:
    """Rows of the batch without a problem (at preview time)."""
    rejected = {(p["sheet"], p["row"]) for p in batch.problems}
    return max(batch.row_count - len(rejected), 0)


def earlier_loads(batch: ImportBatch) -> list[ImportBatch]:
    """Other batches of the same file (same SHA-256) that were loaded."""
    return list(
        db.session.scalars(
            sa.select(ImportBatch)
            .where(
                ImportBatch.sha256 == batch.sha256,
                ImportBatch.id != batch.id,
                ImportBatch.status == "loaded",
            )
            .order_by(ImportBatch.id.desc())
        )
    )


def _claim(batch: ImportBatch, status: str, actor: Person) -> None:
    """Move the batch out of ``previewed`` atomically; a second confirm finds it taken."""
    values = {"status": status}
    if status == "loaded":
        values.update(loaded_by_id=actor.id, loaded_at=utcnow())
    claimed = db.session.execute(
        sa.update(ImportBatch)
        .where(ImportBatch.id == batch.id, ImportBatch.status == "previewed")
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.refresh(batch)
        if batch.status == "loaded":
            raise Conflict(
                f"{batch.filename} has already been loaded, so nothing was changed. "
                "Upload the file again if it has been corrected."
            )
        raise Conflict(f"{batch.filename} was discarded, so it cannot be loaded. Upload it again.")
    db.session.refresh(batch)


def load_batch(
    actor: Person,
    batch: ImportBatch,
    *,
    only_valid: bool,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load a previewed batch, all of it or only its valid rows; once only."""
    require(can_manage_units(actor), "Only the performance team can load data")
    _claim(batch, "loaded", actor)
    parsed = parse_file(batch.content, batch.filename)
    result = load_rows(
        actor,
        parsed,
        only_valid=only_valid,
        sha256=batch.sha256,
        batch_id=batch.id,
        today=today,
        progress=progress,
    )
    problems = parsed.all_problems  # as found at load time: these are the rejects
    batch.problems_json = json.dumps([p.as_dict() for p in problems])
    batch.problem_count = len(problems)
    batch.result_json = json.dumps({**result.as_dict(), "only_valid": only_valid})
    db.session.flush()
    # Revised data may change the evidence of proposals already made (DOMAIN.md dec. 10).
    from workflow_app.services.review import rereview_after_revision

    rereview_after_revision(result.changed, actor=actor)
    return result


def discard_batch(actor: Person, batch: ImportBatch) -> None:
    """Throw a previewed batch away; nothing was stored from it."""
    require(can_manage_units(actor), "Only the performance team can discard uploads")
    _claim(batch, "discarded", actor)
