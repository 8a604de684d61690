"""E-mail notifications: written to the outbox with their cause, sent later, once."""
