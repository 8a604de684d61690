"""The single commit point for a request or a job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from workflow_app.extensions import db
from workflow_app.services.errors import Conflict


@contextmanager
def transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back.

    A lost optimistic-locking race (``StaleDataError``) or a unique-constraint clash with a
    concurrent writer becomes :class:`Conflict`, shown to the user as "already changed".
    """
    try:
        yield
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(
            "Someone else changed this at the same time, so nothing was saved. "
            "Reload the page to see the current state."
        ) from None
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            "This clashes with a change someone else has just saved, so nothing was saved. "
            "Reload the page and try again."
        ) from None
    except BaseException:
        db.session.rollback()
        raise
