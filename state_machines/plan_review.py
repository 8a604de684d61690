"""The review cycle of a recovery / improvement plan, as a ``transitions`` machine.

draft -> submitted -> in review -> returned (comments per action) -> submitted again -> ...
-> approved -> in delivery -> completed; in delivery -> failing -> review period (DOMAIN.md
decision 9) -> back in delivery (or, still failing, the evaluation proposes escalation while
the plan stays in its review period). Any open plan can be withdrawn (a de-escalation or a
replacement plan makes it moot). The same pattern as :mod:`state_machines.escalation`: one
cached machine with ``model=None`` and ``auto_transitions=False``; each event runs on a
throwaway adapter under a lock, so a caller's object is never handed to ``transitions``.
"""

from __future__ import annotations

import threading

from transitions import Machine, MachineError

__all__ = [
    "EVENTS",
    "STATUS_TITLES",
    "IllegalPlanTransition",
    "allowed_events",
    "next_status",
]

STATUS_TITLES = {
    "draft": "Draft",
    "submitted": "Submitted",
    "in_review": "In review",
    "returned": "Returned with comments",
    "approved": "Approved",
    "in_delivery": "In delivery",
    "failing": "Failing its trajectory",
    "review_period": "Review period",
    "completed": "Completed",
    "withdrawn": "Withdrawn",
}

OPEN_STATUSES = tuple(s for s in STATUS_TITLES if s not in ("completed", "withdrawn"))

# event -> (sources, destination, what it means for the person who asked)
EVENTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "submit": (("draft", "returned"), "submitted", "submit the plan for review"),
    "start_review": (("submitted",), "in_review", "start reviewing the plan"),
    "return_for_changes": (("in_review",), "returned", "return the plan with comments"),
    "approve": (("in_review",), "approved", "approve the plan"),
    "start_delivery": (("approved",), "in_delivery", "start delivering the plan"),
    "mark_failing": (("in_delivery",), "failing", "mark the plan as failing"),
    "set_review_period": (("failing",), "review_period", "set a review period"),
    "back_on_track": (("failing", "review_period"), "in_delivery", "put the plan back in delivery"),
    "complete": (("in_delivery",), "completed", "complete the plan"),
    "withdraw": (OPEN_STATUSES, "withdrawn", "withdraw the plan"),
}


class IllegalPlanTransition(ValueError):
    """A move the review cycle does not allow; the message is written for the person who asked."""

    def __init__(self, status: str, event: str) -> None:
        self.status = status
        self.event = event
        what = EVENTS[event][2] if event in EVENTS else event.replace("_", " ")
        allowed = [EVENTS[e][2] for e in allowed_events(status)] if status in STATUS_TITLES else []
        hint = " From here you can: " + "; ".join(allowed) + "." if allowed else " It is closed."
        super().__init__(
            f"You cannot {what}: the plan is {STATUS_TITLES.get(status, status).lower()}.{hint}"
        )


class _Adapter:
    def __init__(self, status: str) -> None:
        self.status = status


_LOCK = threading.Lock()
_MACHINE = Machine(
    model=None,
    states=list(STATUS_TITLES),
    initial=None,
    transitions=[
        {"trigger": event, "source": list(sources), "dest": dest}
        for event, (sources, dest, _) in EVENTS.items()
    ],
    auto_transitions=False,
    send_event=False,
    model_attribute="status",
    queued=False,
)


def allowed_events(status: str) -> list[str]:
    """The events the machine accepts from ``status``, in declaration order."""
    return [e for e in EVENTS if e in _MACHINE.get_triggers(status)]


def next_status(status: str, event: str) -> str:
    """The status ``event`` leads to from ``status``; raises :class:`IllegalPlanTransition`."""
    if event not in EVENTS or status not in STATUS_TITLES:
        raise IllegalPlanTransition(status, event)
    adapter = _Adapter(status)
    with _LOCK:
        _MACHINE.add_model(adapter, initial=status)
        try:
            getattr(adapter, event)()
        except MachineError:
            raise IllegalPlanTransition(status, event) from None
        finally:
            _MACHINE.remove_model(adapter)
    return adapter.status
