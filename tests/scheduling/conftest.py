"""Fixtures for deadlines and the sweep: a unit with a lead and an executive, a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine


@pytest.fixture
def frozen():
    """A clock that stands still until moved: ``frozen.move_to(datetime)``."""
    traveller = time_machine.travel(datetime(2026, 10, 15, 9, 0, tzinfo=UTC), tick=False)
    coordinates = traveller.start()
    yield coordinates
    traveller.stop()


@pytest.fixture
def people_and_unit(create_person, create_unit):
    """(lead, executive, unit) with the lead and accountable executive set."""
    lead = create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk")
    executive = create_person("executive_director", name="Eve Exec", email="exec@example.nhs.uk")
    unit = create_unit(lead=lead, name="Surgery", accountable_executive_id=executive.id)
    return lead, executive, unit
