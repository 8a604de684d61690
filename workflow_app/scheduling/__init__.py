"""APScheduler wiring. The durable time lives in our tables; the scheduler only wakes us."""
