"""Inbound HL7: raw bytes → decoded, parsed message → Order Filler → ACK bytes.

The ACK is produced only after the Order Filler has committed the message and its
effect; if the database does not take it, the answer is AR (resend later) and nothing
claims success.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

import hl7
from sqlalchemy.exc import SQLAlchemyError

from broker.actors.order_filler import OrderFiller, Receipt
from broker.domain.commands import Command, OrderOutcome
from broker.domain.errors import InvalidInput
from broker.domain.ports import InboundRecord
from broker.errors import SenderNotAllowed, StoreUnavailable
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.hl7.refusals import hl7_refusal
from broker.hl7.senders import SenderPolicy
from broker.mapping.charsets import codec_for, decode
from broker.mapping.hl7_in import interpret, order_references
from broker.mapping.hl7_out import message_structure, writer_for
from broker.mapping.profile import Profile
from broker.metrics import Metrics
from broker.security import HL7_SENDER, LoggedAlerts, SecurityAlerts

log = logging.getLogger(__name__)


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
            message_type=f"{header.message_type}^{header.trigger_event}"[:16],
            raw=raw,
        )
        self._metrics.hl7_received(record.message_type)
        self._report_refused_sender(header)
        receipt: Receipt | None = None
        try:
            receipt = self._order_filler.receive(record, lambda: self._commands(raw))
            answered = receipt.record
            if receipt.duplicate:
                log.info("duplicate message %s answered %s", record.control_id, answered.answer)
        except SQLAlchemyError:
            log.exception("message %s not stored", record.control_id)
            refusal = hl7_refusal(StoreUnavailable())
            answered = InboundRecord(
                record.sender,
                record.control_id,
                record.message_type,
                raw,
                refusal.ack,
                refusal.code,
                refusal.location,
                refusal.text,
            )
        self._metrics.hl7_answered(record.message_type, answered.answer)
        return self._encode(self._answer(header, answered, receipt.orders if receipt else ()), header)

    def _answer(self, header: MessageHeader, answered: InboundRecord, applied: Sequence[OrderOutcome]) -> str:
        """The application response the profile names for this message type, else a
        general ACK (also when the message cannot be read to list its orders). A fresh,
        accepted message reports the orders as applied; a refused or repeated one is
        read again to name them."""
        response = self._profile.hl7_in.answers.get(f"{header.message_type}^{header.trigger_event}")
        orders = (applied or self._orders(answered)) if response else None
        if response is None or orders is None:
            return render_ack(header, answered, datetime.now(), self._identity, self._writer)
        response_type = message_structure(response, header.version)
        return render_ack(header, answered, datetime.now(), self._identity, self._writer, response_type, orders)

    def _orders(self, answered: InboundRecord) -> list[OrderOutcome] | None:
        try:
            message = hl7.parse(decode(answered.raw, self._profile.hl7_in.charsets).replace("\n", "\r"))
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

    def replay(self, sender: str, control_id: str) -> InboundRecord:
        """Apply a stored, refused message again; its stored answer is updated."""
        return self._order_filler.replay(sender, control_id, self._commands)

    def _report_refused_sender(self, header: MessageHeader) -> None:
        """Each message from a refused sender is reported, resends included; refusing it
        is left to `_commands`, inside the Order Filler, so it is stored as refused."""
        try:
            self._senders.check(header)
        except SenderNotAllowed as exc:
            self._alerts.refused(HL7_SENDER, header.sender[:200], f"{exc.location} not on the allow-list")

    def _commands(self, raw: bytes) -> list[Command]:
        self._senders.check(MessageHeader.read(raw))
        text = decode(raw, self._profile.hl7_in.charsets)
        try:
            message = hl7.parse(text.replace("\n", "\r"))
        except Exception as exc:  # python-hl7 raises several types for malformed text
            raise InvalidInput("MSH", f"not an HL7 v2 message ({type(exc).__name__})") from None
        return interpret(message, self._profile)

    def _encode(self, ack: str, header: MessageHeader) -> bytes:
        try:
            return ack.encode(codec_for(header.charset, self._profile.hl7_in.charsets))
        except (InvalidInput, UnicodeEncodeError):
            return ack.encode("ascii", errors="replace")
