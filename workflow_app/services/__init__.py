"""Use cases, one function per user intent. Services flush, never commit: the request or
job that calls them owns the single commit point (STYLE-ANCHORS, Indico's habit)."""
