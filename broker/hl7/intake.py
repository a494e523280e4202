"""Inbound HL7: raw bytes → decoded, parsed message → Order Filler → ACK bytes.

The ACK is produced only after the Order Filler has committed the message and its
effect; if the database does not take it (whatever the error), the answer is AR 207
(resend later), nothing claims success, and the connection stays open.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from broker.actors.order_filler import OrderFiller, Receipt
from broker.domain.audit import Requestor
from broker.domain.commands import Command, OrderOutcome
from broker.domain.errors import InvalidInput
from broker.domain.ports import InboundRecord
from broker.errors import SenderNotAllowed, StoreUnavailable
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.hl7.refusals import hl7_refusal
from broker.hl7.senders import SenderPolicy
from broker.mapping.charsets import codec_for, decode
from broker.mapping.hl7_fields import Message
from broker.mapping.hl7_in import (
    interpret,
    is_patient_update,
    order_references,
    read_commands,
    read_message,
    updated_patient,
)
from broker.mapping.hl7_out import message_structure, writer_for
from broker.mapping.hl7_text import canonical
from broker.mapping.profile import Profile
from broker.metrics import Metrics
from broker.security import HL7_SENDER, LoggedAlerts, SecurityAlerts

log = logging.getLogger(__name__)

T = TypeVar("T")


def _log_failure(what: str, exc: Exception) -> None:
    """The error's kind at ERROR; its text and traceback, which may quote the
    statement's parameters (patient data), only at DEBUG."""
    log.error("%s: %s", what, type(exc).__name__)
    log.debug("%s", what, exc_info=exc)


class _Reading:
    """A message read once, before the writer is asked for: parsed, and its commands
    mapped, off the writer's time. Group commit may run the work a second time, and
    applying commands changes them (identifiers assigned), so a second run maps them
    again from the parsed message; nothing is parsed twice. A message that cannot be
    read, or a sender not allowed, fails when the commands are asked for, inside the
    Order Filler, so that it is stored with its refusal (a resend is still a duplicate).

    A patient update the profile refuses for a patient not held names that patient in
    `updates`, read from MSH and PID alone, and the rest is read only if the Order
    Filler asks for the commands (the patient is held): the feed's short path."""

    def __init__(self, raw: bytes, header: MessageHeader, profile: Profile, senders: SenderPolicy) -> None:
        self._raw, self._header, self._profile, self._senders = raw, header, profile, senders
        self._message: Message | Exception | None = None
        self._first: list[Command] | Exception | None = None
        self.updates = self._updated_patient() if is_patient_update(header.event) else None
        if self.updates is None:
            self._first = _attempt(self._interpret)

    def _updated_patient(self) -> tuple[str, str] | None:
        """Asked only of what MSH-9 calls a patient update: an order, most of the
        intake, is decoded once, by `message`, not first here as well."""
        return updated_patient(self._raw, self._profile) if self._senders.allows(self._header) else None

    @property
    def message(self) -> Message | None:
        """The parsed message, None if it cannot be parsed."""
        if self._message is None:
            self._message = _attempt(lambda: read_message(self._raw, self._profile))
        return None if isinstance(self._message, Exception) else self._message

    def _interpret(self) -> list[Command]:
        self._senders.check(self._header)
        message = self.message
        if message is None:
            assert isinstance(self._message, Exception)
            raise self._message
        return interpret(message, self._profile)

    def commands(self) -> list[Command]:
        first, self._first = self._first, None
        if isinstance(first, Exception):
            raise first
        return first if first is not None else self._interpret()


def _attempt(read: Callable[[], T]) -> T | Exception:
    """What `read` gives, or what it raised, to be raised again where the Order Filler
    stores the refusal with the message."""
    try:
        return read()
    except Exception as exc:  # raised again by `_Reading.commands`
        return exc


class Hl7Intake:
    def __init__(
        self,
        order_filler: OrderFiller,
        profile: Profile,
        senders: SenderPolicy | None = None,
        alerts: SecurityAlerts | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._order_filler = order_filler
        self._profile = profile
        self._senders = senders or SenderPolicy([])
        self._alerts = alerts or LoggedAlerts()
        self._metrics = metrics if metrics is not None else Metrics()
        self._identity = (profile.sending_application, profile.sending_facility)
        self._writer = writer_for(profile)

    def handle(self, raw: bytes) -> bytes:
        """The encoded ACK for one framed message; never raises."""
        header = MessageHeader.read(raw)
        record = InboundRecord(
            sender=header.sender[:200],  # bounded like their columns: hostile input is
            control_id=(header.control_id or "sha256:" + hashlib.sha256(raw).hexdigest()[:40])[:199],  # stored too
            message_type=header.event[:16],
            raw=raw,
        )
        self._metrics.hl7_received(record.message_type)
        self._report_refused_sender(header)
        reading = _Reading(raw, header, self._profile, self._senders)
        receipt: Receipt | None = None
        try:
            receipt = self._order_filler.receive(record, reading.commands, self._fingerprint, reading.updates)
            answered = receipt.record
            if receipt.duplicate:
                log.info("duplicate message %s answered %s", record.control_id, answered.answer)
        except StoreUnavailable as exc:  # the store was pulled away (store/watch.py): said once there
            log.warning("message %s not stored: %s", record.control_id, exc)
            answered = self._unstored(record)
        except Exception as exc:  # the store failed (or a defect outside the commands): nothing is claimed
            _log_failure(f"message {record.control_id} not stored", exc)
            answered = self._unstored(record)
        self._metrics.hl7_answered(record.message_type, answered.answer)
        applied = receipt.orders if receipt else ()
        return self._encode(self._answer(header, answered, applied, lambda: reading.message), header)

    def _unstored(self, record: InboundRecord) -> InboundRecord:
        """AR 207 (resend later), and the raw message kept with it if the store takes it
        now; the resend is then applied, not answered as a duplicate."""
        refusal = hl7_refusal(StoreUnavailable())
        answered = replace(
            record, answer=refusal.ack, error_code=refusal.code, error_location=refusal.location, error=refusal.text
        )
        try:
            self._order_filler.keep_unstored(answered)
        except Exception as exc:  # the store is still failing: the ACK must go out all the same
            log.warning("message %s not kept either: %s", record.control_id, type(exc).__name__)
        return answered

    def _fingerprint(self, raw: bytes) -> bytes:
        """What a resend must repeat to be the same message (hl7_text.canonical): read in
        its declared character set, or, when that fails, byte for byte but terminators."""
        try:
            text = decode(raw, self._profile.hl7_in.charsets)
        except InvalidInput:
            return canonical(raw.decode("latin-1")).encode("latin-1")
        return canonical(text).encode("utf-8")

    def _answer(
        self,
        header: MessageHeader,
        answered: InboundRecord,
        applied: Sequence[OrderOutcome],
        message: Callable[[], Message | None],
    ) -> str:
        """The application response the profile names for this message type, else a
        general ACK (also when the message cannot be read to list its orders). A fresh,
        accepted message reports the orders as applied; a refused or repeated one names
        them from the message as parsed on arrival (a repeat is the same message), which a
        general ACK does not need to have parsed at all (the feed's short path)."""
        response = self._profile.hl7_in.answers.get(header.event)
        try:
            orders = (applied or self._orders(answered, message())) if response else None
            if response is not None and orders is not None:
                response_type = message_structure(response, header.version)
                return render_ack(header, answered, datetime.now(), self._identity, self._writer, response_type, orders)
        except Exception as exc:  # e.g. the store failed while naming the orders: the answer stands
            _log_failure(f"application response to {answered.control_id} not built; general ACK sent", exc)
        return render_ack(header, answered, datetime.now(), self._identity, self._writer)

    def _orders(self, answered: InboundRecord, message: Message | None) -> list[OrderOutcome] | None:
        if message is None:  # unreadable: the general ACK says so
            return None
        try:
            references = order_references(message, self._profile)
        except Exception:  # unreadable: the general ACK says so
            return None
        filler = self._order_filler.filler_order_number if answered.answer == "AA" else (lambda *_: "")
        return [
            OrderOutcome(
                r.control,
                r.placer_order_number,
                r.placer_application,
                filler(r.placer_order_number, r.placer_application),
                r.procedures,
                r.accession_number,
            )
            for r in references
        ]

    def replay(self, sender: str, control_id: str, operator: Requestor | None = None) -> InboundRecord:
        """Apply a stored, refused message again; its stored answer is updated (and the
        operator's replay audited)."""
        return self._order_filler.replay(sender, control_id, self._commands, operator)

    def _report_refused_sender(self, header: MessageHeader) -> None:
        """Each message from a refused sender is reported, resends included; refusing it
        is left to `_commands`, inside the Order Filler, so it is stored as refused."""
        try:
            self._senders.check(header)
        except SenderNotAllowed as exc:
            try:
                self._alerts.refused(HL7_SENDER, header.sender[:200], f"{exc.location} not on the allow-list")
            except Exception:  # an alert that cannot be written (audit store down) must not cost the ACK
                log.exception("refused sender not reported")

    def _commands(self, raw: bytes) -> list[Command]:
        self._senders.check(MessageHeader.read(raw))
        return read_commands(raw, self._profile)

    def _encode(self, ack: str, header: MessageHeader) -> bytes:
        try:
            return ack.encode(codec_for(header.charset, self._profile.hl7_in.charsets))
        except (InvalidInput, UnicodeEncodeError):
            return ack.encode("ascii", errors="replace")
