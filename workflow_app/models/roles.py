"""The application's built-in roles (DOMAIN.md, "Who uses it").

Framework-specific decider roles (e.g. NHS Wales' Director General or Minister) are
declared in the framework file and granted to people the same way.
"""

from __future__ import annotations

CEO = "ceo"
EXECUTIVE_DIRECTOR = "executive_director"
DIRECTORATE_LEAD = "directorate_lead"
PERFORMANCE_TEAM = "performance_team"
COMMITTEE_MEMBER = "committee_member"
SYSTEM_ADMIN = "system_admin"

ROLE_TITLES: dict[str, str] = {
    CEO: "Chief Executive",
    EXECUTIVE_DIRECTOR: "Executive Director",
    DIRECTORATE_LEAD: "Directorate lead",
    PERFORMANCE_TEAM: "Performance team",
    COMMITTEE_MEMBER: "Committee member",
    SYSTEM_ADMIN: "System administrator",
}

BUILT_IN_ROLES = tuple(ROLE_TITLES)

# Roles that see every unit; a directorate lead sees only the units they lead.
ORGANISATION_WIDE_ROLES = frozenset(
    {CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM, COMMITTEE_MEMBER, SYSTEM_ADMIN}
)

UNIT_KINDS: dict[str, str] = {
    "operational_directorate": "Operational directorate",
    "corporate_department": "Corporate department",
    "clinical_service_area": "Clinical service area",
    "commissioned_provider": "Commissioned provider",
    "organisation": "NHS organisation",
}
