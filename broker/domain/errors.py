"""Domain refusals. Each names what was wrong; `broker.errors` gives each its wire answer."""


class DomainError(Exception):
    """A request the workflow rules refuse."""


class InvalidInput(DomainError):
    """A required value is missing or malformed; `location` names it (e.g. `PID-3`)."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class UnknownRecord(DomainError):
    """The message refers to a patient, order or step the broker does not hold."""

    def __init__(self, what: str, location: str = "") -> None:
        super().__init__(f"unknown {what}")
        self.what = what
        self.location = location


class DuplicateRecord(DomainError):
    """The record already exists (e.g. a second NW for one placer order number)."""

    def __init__(self, what: str, location: str = "") -> None:
        super().__init__(f"duplicate {what}")
        self.what = what
        self.location = location


class IllegalTransition(DomainError):
    """The state table forbids this change (e.g. an update of a COMPLETED MPPS)."""

    def __init__(self, entity: str, current: str, requested: str) -> None:
        super().__init__(f"{entity} is {current}; {requested} is not allowed")
        self.entity = entity
        self.current = current
        self.requested = requested
