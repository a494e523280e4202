"""Order Filler (DSS/OF): patient registration and placer orders in, each applied once.

RAD-1 Patient Registration, RAD-12 Patient Update, RAD-2 Placer Order Management.
Every inbound message is kept with the answer it got, in the same transaction as its
effect, so a resent message (same sender, same MSH-10) is answered the same way and
applied only once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import assert_never

from broker.domain.audit import Requestor, command_events, restricted_function
from broker.domain.changes import change_order
from broker.domain.commands import (
    ORDER_CONTROL,
    CancelOrder,
    CancelRegistration,
    ChangeOrder,
    Command,
    DiscontinueOrder,
    MergePatient,
    OrderOutcome,
    PlaceOrder,
    RegisterPatient,
    UpdatePatient,
)
from broker.domain.demographics import merged
from broker.domain.errors import DomainError, DuplicateRecord, IllegalTransition, InvalidInput, UnknownRecord
from broker.domain.identifiers import AssignmentPolicy, make_uid
from broker.domain.integrity import claim_identifiers, claim_new_identifiers
from broker.domain.model import Order, Patient
from broker.domain.ports import (
    AuditTrail,
    FillerEvent,
    FillerOrderNotifier,
    InboundRecord,
    OwnTransactions,
    ProcedureNotifier,
    RefusalRule,
    Transactions,
    UnitOfWork,
    UnitOfWorkFactory,
)
from broker.domain.states import cancel_order, discontinue_order
from broker.errors import UnsupportedMessage

log = logging.getLogger(__name__)

#: The Security Alert kind an operator's replay is audited as.
REPLAY = "hl7 replay"

#: What an order command entered at the broker tells the RIS (RAD-3).
_FILLER_EVENTS: dict[type[Command], FillerEvent] = {PlaceOrder: "new", ChangeOrder: "change", CancelOrder: "cancel"}


@dataclass(frozen=True)
class Receipt:
    record: InboundRecord
    duplicate: bool = False
    #: The orders the message placed, changed or ended (empty when refused or repeated).
    orders: tuple[OrderOutcome, ...] = ()


def _never_applied(record: InboundRecord) -> bool:
    """Kept by `keep_unstored`: the store failed it (HL7 AR 207), nothing was applied."""
    return record.answer == "AR" and record.error_code == "207"


def _outcome(command: Command, order: Order) -> OrderOutcome:
    control = ORDER_CONTROL[type(command)]
    return OrderOutcome(
        control,
        order.placer_order_number,
        order.placer_application,
        order.filler_order_number,
        tuple(order.procedures),
        order.accession_number,
    )


def _named_orders(commands: Sequence[Command]) -> tuple[tuple[str, str], ...]:
    """The orders a refused message names (placer application, placer order number):
    linked to it all the same, so an order's page shows the refusals in its HL7 history."""
    named: list[tuple[str, str]] = []
    for command in commands:
        if isinstance(command, PlaceOrder | ChangeOrder):
            named.append((command.order.placer_application, command.order.placer_order_number))
        elif isinstance(command, CancelOrder | DiscontinueOrder):
            named.append((command.placer_application, command.placer_order_number))
    return tuple(dict.fromkeys(key for key in named if key[1]))


class OrderFiller:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        policy: AssignmentPolicy,
        procedures: ProcedureNotifier,
        refusals: RefusalRule,
        clock: Callable[[], datetime] = datetime.now,
        audit: AuditTrail | None = None,
        transactions: Transactions | None = None,
        filler_orders: FillerOrderNotifier | None = None,
    ) -> None:
        self._uow = uow
        #: Where inbound messages are applied: one transaction each unless the
        #: composition root passes a group commit (store/group_commit.py).
        self._transactions = transactions or OwnTransactions(uow)
        self._policy = policy
        self._procedures = procedures
        self._refusals = refusals
        self._clock = clock
        self._audit = audit
        #: Orders made, changed or cancelled here, for the RIS; None: no RIS to tell.
        self._filler_orders = filler_orders

    def receive(
        self,
        record: InboundRecord,
        interpret: Callable[[], Sequence[Command]],
        fingerprint: Callable[[bytes], bytes] = bytes,
        updates: tuple[str, str] | None = None,
    ) -> Receipt:
        """Apply a message's commands exactly once and keep it with its answer.

        A refused message is rolled back and then stored with its refusal, so nothing is
        lost and a replay can be made once the cause is fixed. Database failures are not
        caught: the caller answers AR without claiming anything was stored. A resend is
        recognised by `fingerprint` (the adapter's normal form of the raw message), so
        one that differs only in encoding details gets the original answer; a message
        kept after a storage failure (`keep_unstored`) is applied when it comes again.

        The work runs through `transactions`, which may share its transaction with other
        messages' (group commit) and run it again on a fresh one: `interpret` must give
        fresh commands each time it is called. It returns once that transaction committed.

        `updates` (patient ID, issuer) marks a patient update that is refused when the
        patient is not held (RAD-12 with the profile's `unknown_patient_update: refuse`):
        most of a hospital's ADT feed, refused on one index probe, with no rollback and
        without `interpret` being called.
        """
        return self._transactions(lambda uow: self._receive(uow, record, interpret, fingerprint, updates))

    def _receive(
        self,
        uow: UnitOfWork,
        record: InboundRecord,
        interpret: Callable[[], Sequence[Command]],
        fingerprint: Callable[[bytes], bytes],
        updates: tuple[str, str] | None,
    ) -> Receipt:
        prior = uow.inbound.get(record.sender, record.control_id)
        retry = prior is not None and _never_applied(prior)
        if prior is not None and not retry and fingerprint(prior.raw) == fingerprint(record.raw):
            return Receipt(prior, duplicate=True)
        if prior is not None and not retry:
            return self._conflict(uow, record, fingerprint(record.raw))
        if updates is not None and uow.patients.held(*updates) is None:
            unknown = UnknownRecord("patient", "PID-3")
            return self._kept(uow, self._refused(record, unknown, logging.DEBUG), retry)
        outcomes: list[OrderOutcome] = []
        commands: Sequence[Command] = ()
        try:
            commands = interpret()
            for command in commands:
                order = self._apply(uow, command)
                self._audited(uow, command, order, Requestor(record.sender))
                if order is not None:
                    outcomes.append(_outcome(command, order))
            orders = tuple((o.placer_application, o.placer_order_number) for o in outcomes)
        except (DomainError, UnsupportedMessage) as exc:
            outcomes = []
            uow.rollback()
            record, orders = self._refused(record, exc), _named_orders(commands)
        except Exception as exc:  # a defect: keep the message for replay, answer AE
            log.exception("message %s could not be applied", record.control_id)
            outcomes = []
            uow.rollback()
            record, orders = self._refused(record, exc), _named_orders(commands)
        return self._kept(uow, replace(record, orders=orders), retry, tuple(outcomes))

    @staticmethod
    def _kept(uow: UnitOfWork, record: InboundRecord, retry: bool, outcomes: tuple[OrderOutcome, ...] = ()) -> Receipt:
        """The message stored with its answer (a retry's stored answer replaced)."""
        if retry:
            uow.inbound.update(record)
        else:
            uow.inbound.add(record)
        return Receipt(record, orders=outcomes)

    def enter(self, commands: Sequence[Command], requestor: Requestor) -> list[OrderOutcome]:
        """Apply orders entered by hand (the operator's console: its form and JSON API)
        through the very handlers an HL7 message goes through (same rules, identifiers,
        audit, RAD-4/13 to the Image Managers), in one transaction, and tell the RIS
        (RAD-3): it placed none of this. A refusal raises its DomainError and nothing is
        applied; no inbound message is kept, there is none. The audit names `requestor`,
        the operator."""
        outcomes: list[OrderOutcome] = []
        with self._uow() as uow:
            for command in commands:
                order = self._apply(uow, command)
                self._audited(uow, command, order, requestor)
                if order is not None:
                    self._rad3_filler_order_management(uow, command, order)
                    outcomes.append(_outcome(command, order))
            uow.commit()
        return outcomes

    def keep_unstored(self, record: InboundRecord) -> None:
        """Keep a message whose processing failed in the store, with its AR 207 answer,
        in a transaction of its own, for operators to see and replay; a resend applies
        it. A message already stored (the failure came after its commit) is left alone."""
        with self._uow() as uow:
            if uow.inbound.get(record.sender, record.control_id) is None:
                uow.inbound.add(record)
                uow.commit()

    def filler_order_number(self, placer_order_number: str, placer_application: str) -> str:
        """What the Order Filler calls this order (reported back to the placer)."""
        with self._uow() as uow:
            order = self._placed(uow, placer_order_number, placer_application)
            return order.filler_order_number if order else ""

    def rad3_placer_number_assigned(
        self, filler_order_number: str, placer_order_number: str, placer_application: str
    ) -> bool:
        """The Order Placer's NA answer to the SN of an order made here (RAD-3): the
        number it gave the order, by which the broker names the order to it from now on
        (ORC-2) and finds it in its later messages. False when no order made here has
        that filler number (archived since, or not the broker's)."""
        with self._uow() as uow:
            order = uow.orders.own_by_filler_number(filler_order_number, self._policy.own_application)
            if order is None:
                return False
            order.assigned_placer_number, order.assigned_placer_application = placer_order_number, placer_application
            uow.commit()
        return True

    @staticmethod
    def _placed(uow: UnitOfWork, placer_order_number: str, placer_application: str) -> Order | None:
        """The order of this placer number: one the placer sent, or one made here that
        the placer numbered in its NA answer."""
        order = uow.orders.by_placer_number(placer_order_number, placer_application)
        return order or uow.orders.by_assigned_placer_number(placer_order_number, placer_application)

    def replay(
        self,
        sender: str,
        control_id: str,
        interpret: Callable[[bytes], Sequence[Command]],
        operator: Requestor | None = None,
    ) -> InboundRecord:
        """Apply a stored message that was refused, once its cause is fixed (e.g. the
        patient now exists, or the profile was corrected). An accepted message is never
        applied again: replaying it is refused. The operator's replay is audited (a
        Security Alert, "Use of Restricted Function") with its outcome, in its transaction."""
        with self._uow() as uow:
            stored = uow.inbound.get(sender, control_id)
            if stored is None:
                raise UnknownRecord("inbound message")
            if stored.answer == "AA":
                raise IllegalTransition(f"message {control_id}", "accepted", "REPLAY")
            try:
                applied: list[tuple[str, str]] = []
                for command in interpret(stored.raw):
                    order = self._apply(uow, command)
                    self._audited(uow, command, order, Requestor(sender))
                    if order is not None:
                        applied.append((order.placer_application, order.placer_order_number))
                answered = replace(
                    stored, answer="AA", error_code="", error_location="", error="", orders=tuple(applied)
                )
            except (DomainError, UnsupportedMessage) as exc:
                uow.rollback()
                answered = self._refused(stored, exc)
            uow.inbound.update(answered)
            if self._audit is not None and operator is not None:
                detail = f"message {control_id} ({stored.message_type}) from {sender}, now answered {answered.answer}"
                uow.outbox.add(self._audit.messages_for(restricted_function(REPLAY, detail, self._clock(), operator)))
            uow.commit()
            return answered

    def _conflict(self, uow: UnitOfWork, record: InboundRecord, content: bytes) -> Receipt:
        """Same sender and MSH-10, different content: refused (AE), not applied, and
        kept under a key derived from its content, so a resend of it is answered alike."""
        log.warning("message control ID %s reused with different content", record.control_id)
        digest = hashlib.sha256(content).hexdigest()[:12]
        key = f"{record.control_id[:40]}#conflict:{digest}"
        kept = uow.inbound.get(record.sender, key)
        if kept is not None:
            return Receipt(kept, duplicate=True)
        refused = self._refused(replace(record, control_id=key), DuplicateRecord("message control ID", "MSH-10"))
        uow.inbound.add(refused)
        return Receipt(replace(refused, control_id=record.control_id), duplicate=True)

    def _refused(self, record: InboundRecord, exc: Exception, level: int = logging.INFO) -> InboundRecord:
        """The record with its refusal. `level` DEBUG for the feed's routine refusals
        (updates of patients not held), which an unfiltered ADT feed makes by the
        thousand: each is in the message log and the metrics, not a log line."""
        refusal = self._refusals(exc)
        log.log(level, "message %s refused: %s %s %s", record.control_id, refusal.ack, refusal.code, refusal.location)
        return replace(
            record, answer=refusal.ack, error_code=refusal.code, error_location=refusal.location, error=refusal.text
        )

    def _audited(self, uow: UnitOfWork, command: Command, order: Order | None, requestor: Requestor) -> None:
        """The command's Patient/Order Record audit messages, in its transaction."""
        if self._audit is None:
            return
        for event in command_events(command, order, self._clock(), requestor):
            uow.outbox.add(self._audit.messages_for(event))

    def _apply(self, uow: UnitOfWork, command: Command) -> Order | None:
        """Apply one command; the order it concerned, if any."""
        match command:
            case RegisterPatient():
                self.rad1_patient_registration(uow, command)
            case UpdatePatient():
                self.rad12_patient_update(uow, command)
            case MergePatient():
                self.rad12_patient_merge(uow, command)
            case CancelRegistration():
                self.rad12_cancel_registration(uow, command)
            case PlaceOrder():
                return self.rad2_new_order(uow, command)
            case CancelOrder():
                return self.rad2_cancel_order(uow, command)
            case ChangeOrder():
                return self.rad2_change_order(uow, command)
            case DiscontinueOrder():
                return self.rad2_discontinue_order(uow, command)
            case _:  # a new command without a handler fails type checking here
                assert_never(command)
        return None

    def rad1_patient_registration(self, uow: UnitOfWork, command: RegisterPatient) -> None:
        self._register(uow, command.patient)

    def rad12_patient_update(self, uow: UnitOfWork, command: UpdatePatient) -> None:
        """An update for a patient the broker does not hold (most of a hospital's ADT
        feed) costs one index probe, then the refusal is stored with the raw message."""
        held = uow.patients.held(command.patient.patient_id, command.patient.issuer)
        if held is None:
            raise UnknownRecord("patient", "PID-3")
        self._update(uow, held, command.patient)

    def rad12_patient_merge(self, uow: UnitOfWork, command: MergePatient) -> None:
        """A40: the prior record's orders (and so its scheduled steps) move to the
        surviving patient; the prior record is removed."""
        prior = uow.patients.get(command.prior_patient_id, command.prior_issuer)
        if prior is None:
            raise UnknownRecord("patient", "MRG-1")
        survivor = self._upsert_patient(uow, command.survivor)
        if survivor is prior:
            raise InvalidInput("MRG-1", "a patient cannot be merged into itself")
        for order in uow.orders.for_patient(prior):
            order.patient = survivor
        uow.patients.remove(prior)

    def rad12_cancel_registration(self, uow: UnitOfWork, command: CancelRegistration) -> None:
        """A11/A23: the registration is withdrawn; refused while the patient has orders."""
        patient = uow.patients.get(command.patient_id, command.issuer)
        if patient is None:
            raise UnknownRecord("patient", "PID-3")
        if uow.orders.for_patient(patient):
            raise IllegalTransition(f"patient {command.patient_id}", "ordered", "CANCEL REGISTRATION")
        uow.patients.remove(patient)

    @staticmethod
    def _upsert_patient(uow: UnitOfWork, incoming: Patient) -> Patient:
        """The stored patient as the session tracks it (a merge moves its orders), its
        demographics changed by `incoming` under HL7's update rule."""
        patient = uow.patients.get(incoming.patient_id, incoming.issuer)
        if patient is None:
            return uow.patients.add(incoming)
        update = merged(patient, incoming)
        patient.name, patient.birth_date, patient.sex = update.name, update.birth_date, update.sex
        return patient

    @classmethod
    def _register(cls, uow: UnitOfWork, incoming: Patient) -> Patient:
        """The patient's demographics once `incoming` is applied (stored as a new
        patient, or merged into the held record by domain.demographics: empty = no
        change, `""` = delete), as a value."""
        held = uow.patients.held(incoming.patient_id, incoming.issuer)
        if held is None:
            uow.patients.insert(incoming)
            return incoming
        return cls._update(uow, held, incoming)

    @staticmethod
    def _update(uow: UnitOfWork, held: Patient, incoming: Patient) -> Patient:
        update = merged(held, incoming)
        if (update.name, update.birth_date, update.sex) != (held.name, held.birth_date, held.sex):
            uow.patients.store(update)
        return update

    def rad2_new_order(self, uow: UnitOfWork, command: PlaceOrder) -> Order:
        order = command.order
        if uow.orders.placed(order.placer_order_number, order.placer_application):
            raise DuplicateRecord("placer order number", "ORC-2")
        order.patient = self._register(uow, order.patient)
        self._assign_identifiers(uow, order)
        claim_new_identifiers(order, uow.orders)
        if not order.placer_order_number:  # entered at the broker: no placer numbered it
            order.placer_order_number = order.filler_order_number
            if uow.orders.placed(order.placer_order_number, order.placer_application):
                raise DuplicateRecord("placer order number", "ORC-2")
        uow.orders.insert(order)
        self._rad4_procedure_scheduled(uow, order)
        return order

    def rad2_cancel_order(self, uow: UnitOfWork, command: CancelOrder) -> Order:
        order = self._existing(
            uow, command.placer_order_number, command.placer_application, command.filler_order_number
        )
        cancel_order(order)
        self._rad13_procedure_update(uow, order, "CA")
        return order

    def rad2_change_order(self, uow: UnitOfWork, command: ChangeOrder) -> Order:
        held = command.order
        order = self._existing(uow, held.placer_order_number, held.placer_application, held.filler_order_number)
        for step in change_order(order, command.order):
            procedure = next(rp for rp in order.procedures if step in rp.steps)
            step.station_ae = self._policy.station_for(procedure.code.value if procedure.code else "", step.modality)
        claim_identifiers(order, uow.orders)
        self._rad13_procedure_update(uow, order, "XO")
        return order

    def rad2_discontinue_order(self, uow: UnitOfWork, command: DiscontinueOrder) -> Order:
        order = self._existing(
            uow, command.placer_order_number, command.placer_application, command.filler_order_number
        )
        discontinue_order(order)
        self._rad13_procedure_update(uow, order, "DC")
        return order

    def _rad3_filler_order_management(self, uow: UnitOfWork, command: Command, order: Order) -> None:
        """The Order Filler's own order events for the Order Placer: a new order (SN, the
        RIS numbers it), a change (XO), a cancel (OC). They share the order's outbox
        ordering with its later status, so the RIS hears of the order first."""
        event = _FILLER_EVENTS.get(type(command))
        if event is not None and self._filler_orders is not None:
            uow.outbox.add(self._filler_orders.messages_for(order, event, self._clock()))

    def _rad4_procedure_scheduled(self, uow: UnitOfWork, order: Order) -> None:
        uow.outbox.add(self._procedures.messages_for(order, "NW", self._clock()))

    def _rad13_procedure_update(self, uow: UnitOfWork, order: Order, control: str) -> None:
        uow.outbox.add(self._procedures.messages_for(order, control, self._clock()))

    def _existing(
        self, uow: UnitOfWork, placer_order_number: str, placer_application: str, filler_order_number: str
    ) -> Order:
        """The order a placer's message names: by its placer number; for an order made
        at the broker, by the number the placer gave it in its NA answer to the SN, or
        by ORC-3 (a placer whose answer did not number it)."""
        order = self._placed(uow, placer_order_number, placer_application)
        if order is None and filler_order_number:
            order = uow.orders.own_by_filler_number(filler_order_number, self._policy.own_application)
        if order is None:
            raise UnknownRecord("order", "ORC-2")
        return order

    def _assign_identifiers(self, uow: UnitOfWork, order: Order) -> None:
        """Fill what the placer left out: accession, RP/SPS IDs, Study UID, station."""
        p = self._policy
        if not order.accession_number:
            order.accession_number = f"{p.accession_prefix}{uow.sequences.next('accession'):08d}"
        if not order.filler_order_number:
            order.filler_order_number = order.accession_number
        for procedure in order.procedures:
            if not procedure.requested_procedure_id:
                number = uow.sequences.next("requested_procedure")
                procedure.requested_procedure_id = f"{p.requested_procedure_prefix}{number:08d}"
            if not procedure.study_instance_uid:
                procedure.study_instance_uid = make_uid(p.uid_root)
            for step in procedure.steps:
                if not step.sps_id:
                    step.sps_id = f"{p.sps_prefix}{uow.sequences.next('sps'):08d}"
                if not step.station_ae:
                    step.station_ae = p.station_for(procedure.code.value if procedure.code else "", step.modality)
