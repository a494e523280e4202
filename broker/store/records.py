"""The domain's entities as the ORM holds them: a subclass of each, mapped in
store/tables.py, while the domain classes themselves stay plain.

Why: SQLAlchemy instruments the classes it maps. Every instance of a mapped class gets
its state object at construction, and every attribute set and list assignment goes
through an event, whether or not the object is ever stored. The HL7 intake builds an
order's patient, order, procedures and steps from each message and writes them with
Core statements (store/repositories.py). With the domain classes mapped, reading an
ORM^O01 into them took 183 µs instead of 97, and the whole message 1.01 ms in process
instead of 0.79 (issue #17; the Order Filler's changes to them paid too).

Rows the ORM loads are records (instances of these subclasses, so of the domain
classes too); a plain entity the session must store is copied into a record first
(`stored`), and the caller goes on with the record: changes to the plain one would
not be stored.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from broker.domain.model import Order, Patient, PerformedStep, RequestedProcedure, ScheduledStep


class StoredPatient(Patient):
    """A stored patient."""


class StoredStep(ScheduledStep):
    """A stored Scheduled Procedure Step."""


class StoredProcedure(RequestedProcedure):
    """A stored Requested Procedure."""


class StoredOrder(Order):
    """A stored order."""


class StoredPerformedStep(PerformedStep):
    """A stored Performed Procedure Step."""


_RECORDS: dict[type, type] = {
    Patient: StoredPatient,
    ScheduledStep: StoredStep,
    RequestedProcedure: StoredProcedure,
    Order: StoredOrder,
    PerformedStep: StoredPerformedStep,
}

E = TypeVar("E")


def stored(entity: E) -> E:
    """`entity` as the session can store it: itself if it is a record already, else a
    record of its values, the entities it holds made records too (one record for an
    entity held twice)."""
    return _stored(entity, {})  # type: ignore[no-any-return]


def _stored(value: Any, made: dict[int, Any]) -> Any:
    if isinstance(value, list):
        return [_stored(item, made) for item in value]
    record_type = _RECORDS.get(type(value))
    if record_type is None:  # a record already, or a value (text, date, Code ...)
        return value
    if id(value) not in made:
        made[id(value)] = record_type(**{f.name: _stored(getattr(value, f.name), made) for f in fields(value)})
    return made[id(value)]
