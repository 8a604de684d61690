"""The one canonical JSON form that Escalate hashes: sorted keys, no spaces, UTF-8 as is.

Used for proposal evidence fingerprints, issued reports and signature payloads, so the same
content always gives the same SHA-256 and anyone can recompute it from the stored rows.
(The audit chain keeps its own older form, ``services.audit.canonical_json``, because its
stored hashes depend on it.)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` serialised the same way every time."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    """SHA-256 (hex) of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
