"""What a signature signs: the payload whose SHA-256 is kept with each decision signature.

RELIABILITY-ANCHORS check 15 (the 21 CFR Part 11 §11.50 model): a signature record shows the
printed name, role, UTC time and meaning, and is linked to exactly what was signed. The
payload is the decision's content as the signer saw it (case, levels, outcome, reason,
meeting) plus who signed, in which role, meaning what and when, as canonical JSON (sorted
keys, no spaces), so anyone can recompute the hash from the stored rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow_app.canonical import canonical_json, sha256_hex
from workflow_app.clock import as_utc


def signature_payload(
    *,
    decision,
    case,
    person_id: int,
    role: str,
    meaning: str,
    on_behalf_of_id: int | None,
    signed_at: datetime,
    outcome: str,
    reason: str,
) -> dict[str, Any]:
    """The canonical content of one signature on ``decision`` (JSON-able, no floats)."""
    return {
        "decision_id": decision.id,
        "case_id": case.id,
        "case_version": case.version,
        "unit_id": case.unit_id,
        "track": case.track,
        "from_level": decision.from_level,
        "to_level": decision.to_level,
        "outcome": outcome,
        "reason": reason,
        "meeting_reference": decision.meeting_reference or "",
        "signer_id": person_id,
        "role": role,
        "meaning": meaning,
        "on_behalf_of_id": on_behalf_of_id,
        "signed_at": as_utc(signed_at).isoformat(),
    }


def payload_sha256(payload: dict[str, Any]) -> str:
    """SHA-256 (hex) of the payload's canonical JSON."""
    return sha256_hex(canonical_json(payload))
