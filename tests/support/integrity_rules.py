"""Clinical integrity rules (broker/domain/integrity.py) as the Order Filler and the PPS
Manager apply them: the tests, written against the store ports only, so that they run
both on in-memory fakes (tests/unit/test_domain_integrity.py: no sockets, no database)
and on the real store (tests/integration/test_integrity_rules_store.py: SQLite and
PostgreSQL). Each module provides the `store` fixture.

Why: an accession number re-used for another patient, or an MPPS that quotes only an
accession number, once started another patient's exam (issue 14, defects 1 and 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import pytest

from broker.actors.order_filler import OrderFiller, Receipt
from broker.actors.pps_manager import PpsManager
from broker.domain.audit import AuditEvent, Requestor
from broker.domain.commands import CancelOrder, Command, DiscontinueOrder, PlaceOrder, UpdatePatient
from broker.domain.errors import IdentifierInUse, PatientMismatch, UnknownRecord
from broker.domain.identifiers import AssignmentPolicy
from broker.domain.model import (
    Order,
    Patient,
    PerformedStep,
    PersonName,
    PpsStatus,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
    StepReference,
    StepStatus,
)
from broker.domain.ports import InboundRecord, OutboundMessage, Refusal, UnitOfWorkFactory
from broker.hl7.refusals import Hl7Refusals, hl7_refusal
from broker.mapping.profile import load_profile

NOW = datetime(2026, 11, 23, 10, 0)


class Notices:
    """Status changes (RAD-3) and audit events, as the fakes' outbox messages."""

    def messages_for(self, change: StatusChange) -> list[OutboundMessage]:
        payload = f"{change.order.patient.patient_id}|{change.step.sps_id}|{change.status}".encode()
        return [OutboundMessage("RIS", change.order.placer_order_number, payload)]


class NoMessages:
    def messages_for(self, *args: object) -> list[OutboundMessage]:
        return []


class Audits:
    def messages_for(self, event: AuditEvent) -> list[OutboundMessage]:
        return [OutboundMessage("audit", "", f"{event.what}|{event.mpps_uid}|{event.detail}".encode())]


def _order(placer: str, patient_id: str, accession: str, study: str = "", sps: str = "") -> Order:
    step = ScheduledStep(sps_id=sps, modality="CT", start=NOW)
    procedure = RequestedProcedure(requested_procedure_id="", study_instance_uid=study, steps=[step])
    return Order(placer, "", accession, Patient(patient_id), placer_application="RIS", procedures=[procedure])


class RuleStore(UnitOfWorkFactory, Protocol):
    """A store the rules run on: its units of work, and what its outbox holds."""

    def sent(self, destination: str) -> list[bytes]: ...


@pytest.fixture
def filler(store: RuleStore) -> OrderFiller:
    return OrderFiller(store, AssignmentPolicy(), NoMessages(), hl7_refusal, clock=lambda: NOW)


@pytest.fixture
def manager(store: RuleStore) -> PpsManager:
    return PpsManager(store, Notices(), NoMessages(), link_by_accession=True, clock=lambda: NOW, audit=Audits())


_counter = iter(range(10_000))


def _send(filler: OrderFiller, *commands: Command, sender: str = "RIS1") -> Receipt:
    record = InboundRecord(sender, f"MSG{next(_counter)}", "ORM^O01", repr(commands).encode())
    return filler.receive(record, lambda: list(commands))


def _answer(receipt: Receipt) -> tuple[str, str, str]:
    return receipt.record.answer, receipt.record.error_code, receipt.record.error_location


def _pps(uid: str, patient_id: str, *refs: StepReference, issuer: str = "") -> PerformedStep:
    return PerformedStep(uid, PpsStatus.IN_PROGRESS, list(refs), "{}", "CT01", patient_id, issuer)


def _steps(store: RuleStore, placer: str) -> list[StepStatus]:
    with store() as uow:
        order = uow.orders.by_placer_number(placer, "RIS")
        assert order is not None
        return [s.status for s in order.steps()]


def _placed(store: RuleStore, *placers: str) -> list[str]:
    """Those of `placers` the store holds an order of."""
    with store() as uow:
        return [p for p in placers if uow.orders.by_placer_number(p, "RIS") is not None]


def _exception(store: RuleStore, uid: str) -> tuple[int, str]:
    with store() as uow:
        pps = uow.performed.get(uid)
        assert pps is not None
        return len(pps.linked_steps), pps.unlinked_reason


# --- Deliver 1: an accession number belongs to one active order -------------------------


def test_accession_of_an_active_order_refused_for_another_patient(store: RuleStore, filler: OrderFiller) -> None:
    assert _answer(_send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")), sender="RIS1"))[0] == "AA"
    refused = _send(filler, PlaceOrder(_order("PO2", "PAT2", "ACC1")), sender="RIS2")
    assert _answer(refused) == ("AE", "205", "OBR-18")
    # nothing of the refused message was applied: no second order, no second patient
    assert _placed(store, "PO1", "PO2") == ["PO1"]
    with store() as uow:
        assert uow.patients.get("PAT2", "") is None
        kept = uow.inbound.get("RIS2", refused.record.control_id)
        assert kept is not None and kept.answer == "AE"


@pytest.mark.parametrize("end", [CancelOrder, DiscontinueOrder])
def test_cancelled_or_discontinued_order_releases_its_accession(
    store: RuleStore, filler: OrderFiller, end: type[CancelOrder | DiscontinueOrder]
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    assert _answer(_send(filler, end("PO1", "RIS")))[0] == "AA"
    assert _answer(_send(filler, PlaceOrder(_order("PO2", "PAT2", "ACC1"))))[0] == "AA"


def test_two_orders_in_one_message_cannot_share_an_accession(store: RuleStore, filler: OrderFiller) -> None:
    receipt = _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")), PlaceOrder(_order("PO2", "PAT1", "ACC1")))
    assert _answer(receipt) == ("AE", "205", "OBR-18")
    assert _placed(store, "PO1", "PO2") == []


def test_study_uid_belongs_to_one_requested_procedure(store: RuleStore, filler: OrderFiller) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1", study="1.2.3")))
    assert _answer(_send(filler, PlaceOrder(_order("PO2", "PAT2", "ACC2", study="1.2.3")))) == ("AE", "205", "ZDS-1")
    twice = _order("PO3", "PAT2", "ACC3", study="1.2.4")
    twice.procedures.append(RequestedProcedure("RP2", "1.2.4", steps=[ScheduledStep("", "CT")]))
    assert _answer(_send(filler, PlaceOrder(twice))) == ("AE", "205", "ZDS-1")
    _send(filler, CancelOrder("PO1", "RIS"))
    assert _answer(_send(filler, PlaceOrder(_order("PO4", "PAT2", "ACC4", study="1.2.3"))))[0] == "AA"


def test_refusal_names_the_field_the_profile_maps() -> None:
    in_use = IdentifierInUse("accession number", "accession_number")
    text = "accession number in use by another order"
    assert Hl7Refusals(load_profile("ihe-swf"))(in_use) == Refusal("AE", "205", "OBR-18", text)
    assert hl7_refusal(in_use, {"accession_number": "IPC-1"}) == Refusal("AE", "205", "IPC-1", text)


def test_unknown_command_is_refused_not_acknowledged(store: RuleStore, filler: OrderFiller) -> None:
    """#15 defect 5: the dispatch is exhaustive (assert_never); at run time a command it
    does not know is refused, never answered AA while doing nothing."""
    record = InboundRecord("RIS1", "X1", "ORM^O01", b"x")
    receipt = filler.receive(record, lambda: [object()])  # type: ignore[list-item]
    assert _answer(receipt)[:2] == ("AE", "207")


def test_update_of_a_patient_not_held_is_refused_on_the_probe_alone(
    store: RuleStore, filler: OrderFiller, caplog: pytest.LogCaptureFixture
) -> None:
    """#17 (the feed's short path): an A08 the profile refuses for an unknown patient
    names its patient; not held, it is refused AE 204 at PID-3 and kept, and its
    commands are never read, nor is it logged above DEBUG (an unfiltered ADT feed makes
    thousands). Held, it is read and applied as any other update."""

    def unread() -> list[Command]:
        raise AssertionError("the commands of an update for a patient not held were read")

    caplog.set_level(logging.INFO, logger="broker.actors.order_filler")
    record = InboundRecord("HIS", "A08-1", "ADT^A08", b"MSH|raw")
    refused = filler.receive(record, unread, updates=("PAT9", "HOSP"))
    assert (_answer(refused), refused.duplicate) == (("AE", "204", "PID-3"), False)
    assert not [r for r in caplog.records if "refused" in r.getMessage()]
    again = filler.receive(record, unread, updates=("PAT9", "HOSP"))
    assert again.duplicate and _answer(again) == ("AE", "204", "PID-3")
    with store() as uow:
        kept = uow.inbound.get("HIS", "A08-1")
        assert kept is not None and (kept.raw, kept.answer) == (b"MSH|raw", "AE")

    _send(filler, PlaceOrder(_order("PO1", "PAT9", "ACC1")))
    renamed = Patient("PAT9", name=PersonName("YAMADA^HANAKO"))
    update = InboundRecord("HIS", "A08-2", "ADT^A08", b"MSH|raw2")
    assert _answer(filler.receive(update, lambda: [UpdatePatient(renamed)], updates=("PAT9", "")))[0] == "AA"
    with store() as uow:
        held = uow.patients.get("PAT9", "")
        assert held is not None and held.name == PersonName("YAMADA^HANAKO")


# --- Deliver 2: MPPS linking is patient-safe -------------------------------------------


def test_defect_1_accession_only_mpps_of_another_patient_links_nothing(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT2", StepReference(accession_number="ACC1")))
    linked, reason = _exception(store, "1.9.1")
    assert linked == 0 and "PatientID" in reason and "'PAT2'" in reason and "'PAT1'" in reason
    assert _steps(store, "PO1") == [StepStatus.SCHEDULED]
    assert store.sent("RIS") == []


def test_accession_only_mpps_of_the_same_patient_starts_the_step(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT1", StepReference(accession_number="ACC1")))
    assert _exception(store, "1.9.1") == (1, "")
    assert _steps(store, "PO1") == [StepStatus.STARTED]


def test_defect_2_accession_links_to_the_active_order_not_the_cancelled_one(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    _send(filler, CancelOrder("PO1", "RIS"))
    _send(filler, PlaceOrder(_order("PO2", "PAT1", "ACC1")))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT1", StepReference(accession_number="ACC1")))
    assert _exception(store, "1.9.1") == (1, "")
    assert _steps(store, "PO2") == [StepStatus.STARTED]


@pytest.mark.parametrize(
    ("pps", "attribute"),
    [
        (lambda ref: _pps("1.9.1", "", ref), "PatientID"),
        (lambda ref: _pps("1.9.1", "PAT1", ref, issuer="OTHER"), "IssuerOfPatientID"),
        (lambda ref: _pps("1.9.1", "PAT1", replace(ref, study_instance_uid="9.9.9")), "StudyInstanceUID"),
    ],
)
def test_disagreement_keeps_the_mpps_as_an_exception_naming_the_attribute(
    store: RuleStore,
    filler: OrderFiller,
    manager: PpsManager,
    pps: Callable[[StepReference], PerformedStep],
    attribute: str,
) -> None:
    order = _order("PO1", "PAT1", "ACC1", study="1.2.3", sps="SPS1")
    order.patient.issuer = "HOSP"
    _send(filler, PlaceOrder(order))
    manager.rad6_modality_pps_in_progress(pps(StepReference(sps_id="SPS1", study_instance_uid="1.2.3")))
    linked, reason = _exception(store, "1.9.1")
    assert linked == 0 and reason.startswith(f"{attribute} disagrees")
    assert _steps(store, "PO1") == [StepStatus.SCHEDULED]


def test_issuer_absent_from_the_mpps_still_links(store: RuleStore, filler: OrderFiller, manager: PpsManager) -> None:
    order = _order("PO1", "PAT1", "ACC1", study="1.2.3", sps="SPS1")
    order.patient.issuer = "HOSP"
    _send(filler, PlaceOrder(order))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT1", StepReference(sps_id="SPS1")))
    assert _exception(store, "1.9.1") == (1, "")


def test_one_disagreeing_item_links_none_of_the_group(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1", sps="SPS1")))
    _send(filler, PlaceOrder(_order("PO2", "PAT2", "ACC2", sps="SPS2")))
    refs = (StepReference(sps_id="SPS1"), StepReference(sps_id="SPS2"))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT1", *refs))
    assert _exception(store, "1.9.1")[0] == 0
    assert _steps(store, "PO1") == [StepStatus.SCHEDULED] and _steps(store, "PO2") == [StepStatus.SCHEDULED]


def test_reconcile_takes_only_the_mpps_patients_order_unless_forced(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    _send(filler, PlaceOrder(_order("PO2", "PAT2", "ACC2")))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT2", StepReference(accession_number="ACC1")))
    assert [c.accession_number for c in manager.candidates("1.9.1")] == ["ACC2"]
    with pytest.raises(PatientMismatch, match="PatientID"):
        manager.reconcile("1.9.1", "ACC1")
    assert _steps(store, "PO1") == [StepStatus.SCHEDULED]
    manager.reconcile("1.9.1", "ACC1", force=True, requestor=Requestor("admin"))
    assert _steps(store, "PO1") == [StepStatus.STARTED]
    audit = store.sent("audit")[-1].decode()
    assert audit.startswith("procedure-record|1.9.1|") and "forced past: PatientID disagrees" in audit


def test_reconcile_finds_the_active_order_of_a_reused_accession(
    store: RuleStore, filler: OrderFiller, manager: PpsManager
) -> None:
    _send(filler, PlaceOrder(_order("PO1", "PAT1", "ACC1")))
    _send(filler, CancelOrder("PO1", "RIS"))
    manager.rad6_modality_pps_in_progress(_pps("1.9.1", "PAT1"))
    with pytest.raises(UnknownRecord):
        manager.reconcile("1.9.1", "ACC1")
    _send(filler, PlaceOrder(_order("PO2", "PAT1", "ACC1")))
    manager.reconcile("1.9.1", "ACC1")
    assert _steps(store, "PO2") == [StepStatus.STARTED] and _exception(store, "1.9.1") == (1, "")
