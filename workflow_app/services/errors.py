"""Errors raised by services; the web layer turns each into a clear page or message."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; the message is shown to the user."""


class PermissionDenied(ServiceError):
    """The acting person may not do this."""


class NotFound(ServiceError):
    """The thing asked for does not exist (or is not visible to the person)."""


class Conflict(ServiceError):
    """Someone else changed the thing first (e.g. already decided)."""


def require(allowed: bool, message: str = "You do not have permission to do that.") -> None:
    """Raise :class:`PermissionDenied` unless ``allowed``."""
    if not allowed:
        raise PermissionDenied(message)
