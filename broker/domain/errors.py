"""Domain refusals. Each names what was wrong; `broker.errors` gives each its wire answer."""

import enum


class DomainError(Exception):
    """A request the workflow rules refuse."""


class Problem(enum.Enum):
    """What is wrong with a value: each has its own code on the wire."""

    MISSING = "missing"  # HL7 101 / DIMSE 0x0120
    EMPTY = "empty"  # HL7 101 / DIMSE 0x0121 (present, but its required value is empty)
    MALFORMED = "malformed"  # HL7 102 / DIMSE 0x0106
    NOT_IN_TABLE = "unknown"  # HL7 103 / DIMSE 0x0106
    NOT_ALLOWED = "not allowed"  # HL7 102 / DIMSE 0x0105 (e.g. in an N-SET, PS3.4 F.7.2-1)


class InvalidInput(DomainError):
    """A value is missing, malformed or not one the broker knows; `location` names it
    (e.g. `PID-3`)."""

    def __init__(self, location: str, reason: str, problem: Problem = Problem.MALFORMED) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason
        self.problem = problem


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


class IdentifierInUse(DuplicateRecord):
    """An identifier that must name one thing names another already: an accession
    number held by another active order, a Study Instance UID by another requested
    procedure. `field` is the logical name (e.g. `accession_number`): which message
    field carries it is the adapter's knowledge (the profile maps it)."""

    def __init__(self, what: str, field: str) -> None:
        super().__init__(what)
        self.field = field


class PatientMismatch(DomainError):
    """A performed step and the scheduled step it would serve disagree on the patient
    (or the study): linking them would put one patient's images under another's order."""

    def __init__(self, disagreement: str) -> None:
        super().__init__(disagreement)
        self.disagreement = disagreement
