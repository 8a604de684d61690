"""Writing a plan, saving drafts, submitting, reviewing, returning and approving it."""
