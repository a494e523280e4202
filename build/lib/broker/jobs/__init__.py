"""Background jobs on APScheduler: the outbox drain (and, later, housekeeping)."""
