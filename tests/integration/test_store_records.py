"""#17 The domain's classes stay plain; the ORM maps a subclass of each
(store/records.py), and a plain entity given to the session is stored as a record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, inspect

import broker.store.tables  # noqa: F401  (the mapping, as the store loads it)
from broker.domain.model import Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.store.records import StoredOrder, StoredPatient, StoredProcedure, StoredStep, stored
from broker.store.uow import SqlUnitOfWorkFactory


def _order(patient: Patient) -> Order:
    step = ScheduledStep("SPS1", "CT", start=datetime(2026, 12, 4, 9, 0))
    return Order("PO1", "FO1", "ACC1", patient, procedures=[RequestedProcedure("RP1", "1.2.3", steps=[step])])


def test_the_domain_classes_are_not_instrumented() -> None:
    """What the HL7 mapping builds carries no ORM state: its attribute sets are plain."""
    for cls in (Order, Patient, RequestedProcedure, ScheduledStep):
        assert inspect(cls, raiseerr=False) is None, cls
    assert not hasattr(_order(Patient("PAT1")), "_sa_instance_state")
    assert inspect(StoredOrder).class_ is StoredOrder


def test_stored_copies_a_plain_entity_into_records_and_keeps_records() -> None:
    patient = Patient("PAT1", "ISS", PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ"), "19700101", "M")
    order = _order(patient)
    order.referring_physician = "HOUSE"
    record = stored(order)
    assert type(record) is StoredOrder and type(record.patient) is StoredPatient
    assert type(record.procedures[0]) is StoredProcedure and type(record.procedures[0].steps[0]) is StoredStep
    assert (record.patient.name, record.referring_physician) == (patient.name, "HOUSE")
    assert record.procedures[0].steps[0].start == datetime(2026, 12, 4, 9, 0)
    assert stored(record) is record
    shared = Patient("PAT2")
    pair = stored([shared, shared])
    assert pair[0] is pair[1]


def test_what_add_returns_is_what_the_session_stores(engine: Engine) -> None:
    """A change made to the returned record after `add` is stored; the plain entity given
    is not tracked."""
    factory = SqlUnitOfWorkFactory(engine)
    plain = Patient("PAT1", name=PersonName("DOE^JANE"))
    with factory() as work:
        record = work.patients.add(plain)
        record.sex = "F"
        plain.birth_date = "19990101"
        work.commit()
    with factory() as work:
        found = work.patients.get("PAT1", "")
        assert found is not None and isinstance(found, StoredPatient)
        assert (found.name, found.sex, found.birth_date) == (PersonName("DOE^JANE"), "F", "")
