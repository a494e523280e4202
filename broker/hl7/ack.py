"""General acknowledgement (ACK) with MSA and, on refusal, ERR (HL7 table 0357).

The ERR segment changed shape in v2.5: v2.3.1 carries everything in ERR-1
(location^^code&text&table), v2.5+ uses ERR-2 location, ERR-3 code, ERR-4 severity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from broker.domain.commands import OrderOutcome
from broker.domain.ports import InboundRecord
from broker.hl7.header import MessageHeader
from broker.mapping.hl7_out import Header, Hl7Writer, has_structure, ipc_segment, universal_service

#: HL7 table 0357, message error condition codes.
ERROR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


def _location(location: str, *, erl: bool) -> list[str]:
    """`PID-3.1` → segment^sequence^field (v2.3.1 ELD), or for v2.5 ERL also
    ^repetition^component^subcomponent."""
    seg, _, path = location.partition("-")
    if not seg:
        return []
    field, *rest = path.split(".")
    return [seg, "1", field, "1", *rest] if erl and rest else [seg, "1", field]


def _before_v2_4(header: MessageHeader) -> bool:
    return header.version.startswith(("2.1", "2.2", "2.3"))


def _err(w: Hl7Writer, header: MessageHeader, record: InboundRecord) -> str:
    code = (record.error_code, ERROR_TEXT.get(record.error_code, "Error"), "HL70357")
    if _before_v2_4(header):  # ERR-1 ELD: segment^sequence^field^code&text&table
        location = _location(record.error_location, erl=False) or ["", "", ""]
        return w.segment("ERR", [*location, code])
    return w.segment("ERR", "", _location(record.error_location, erl=True), list(code), "E", "", "", "", record.error)


#: ORC-1 in an order response: (accepted, refused) per order control code (HL7 table 0119).
RESPONSE_CONTROL = {"NW": ("OK", "UA"), "CA": ("CR", "UC"), "XO": ("XR", "UX"), "DC": ("DR", "UD")}


def render_ack(
    header: MessageHeader,
    record: InboundRecord,
    now: datetime,
    sender: tuple[str, str],
    writer: Hl7Writer,
    response_type: str | None = None,
    orders: Sequence[OrderOutcome] = (),
) -> str:
    """The acknowledgement for `record` (its answer decided), from `sender` (MSH-3/4,
    the broker's identity) to the message's sender: a general ACK, or the application response `response_type` (ORR^O02,
    ORG^O20, ORI^O24) with one ORC per order saying what became of it, followed by the
    order detail its structure requires (OBR; for ORI^O24 also each step's IPC). When
    an ORI cannot carry a complete IPC for every order (a refused message that named none),
    the answer is a general ACK rather than a malformed ORI."""
    if response_type and response_type.startswith("ORI") and not all(_ipc_complete(o) for o in orders):
        response_type = None
    event = header.trigger_event
    message_type = f"ACK^{event}^ACK" if event and has_structure(header.version) else f"ACK^{event}".rstrip("^")
    w = writer
    lines = [w.segment("MSA", record.answer, header.control_id, record.error)]
    if record.answer != "AA":
        lines.append(_err(w, header, record))
    imaging = bool(response_type and response_type.startswith("ORI"))
    for order in orders if response_type else ():
        lines += _order(w, order, accepted=record.answer == "AA", imaging=imaging)
    return w.message(
        Header(
            sending=sender,
            receiving=(header.sending_application, header.sending_facility),
            message_type=response_type or message_type,
            version=header.version,
            at=now,
            charset=header.charset,
            charset_handling=header.charset_handling,
        ),
        lines,
    )


def _ipc_complete(order: OrderOutcome) -> bool:
    """Whether IPC-1..IPC-4 (all required) can be written for at least one step and for
    each of them."""
    steps = [(procedure, step) for procedure in order.procedures for step in procedure.steps]
    return bool(steps) and all(
        order.accession_number and p.requested_procedure_id and p.study_instance_uid and s.sps_id for p, s in steps
    )


def _order(w: Hl7Writer, order: OrderOutcome, *, accepted: bool, imaging: bool) -> list[str]:
    """ORC, OBR (placer and filler numbers, universal service ID) and, for an imaging
    order response, one IPC per scheduled step."""
    done, refused = RESPONSE_CONTROL.get(order.control, ("OK", "UA"))
    placer = [order.placer_order_number, order.placer_application]
    service = universal_service(order.procedures[0]) if order.procedures else ""
    lines = [
        w.segment("ORC", done if accepted else refused, placer, order.filler_order_number),
        w.segment("OBR", "1", placer, order.filler_order_number, service),
    ]
    if imaging:
        lines += [
            ipc_segment(w, order.accession_number, procedure, step)
            for procedure in order.procedures
            for step in procedure.steps
        ]
    return lines
