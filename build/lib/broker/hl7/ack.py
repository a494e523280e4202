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
from broker.mapping.hl7_out import escape, msh, segment

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


def _err(header: MessageHeader, record: InboundRecord) -> str:
    text = ERROR_TEXT.get(record.error_code, "Error")
    if _before_v2_4(header):  # ERR-1 ELD: segment^sequence^field^code&text&table
        location = [escape(p) for p in _location(record.error_location, erl=False)] or ["", "", ""]
        return "ERR|" + "^".join([*location, f"{record.error_code}&{escape(text)}&HL70357"])
    return segment(
        "ERR",
        "",
        _location(record.error_location, erl=True),
        [record.error_code, text, "HL70357"],
        "E",
        "",
        "",
        "",
        record.error,
    )


#: ORC-1 in an order response: (accepted, refused) per order control code (HL7 table 0119).
RESPONSE_CONTROL = {"NW": ("OK", "UA"), "CA": ("CR", "UC"), "XO": ("XR", "UX"), "DC": ("DR", "UD")}


def render_ack(
    header: MessageHeader,
    record: InboundRecord,
    now: datetime,
    response_type: str | None = None,
    orders: Sequence[OrderOutcome] = (),
) -> str:
    """The acknowledgement for `record` (its answer decided), addressed back to its
    sender: a general ACK, or the application response `response_type` (ORR^O02,
    ORG^O20, ORI^O24) with one ORC per order saying what became of it."""
    event = header.trigger_event
    message_type = f"ACK^{event}".rstrip("^") if _before_v2_4(header) or not event else f"ACK^{event}^ACK"
    lines = [
        msh(
            sending=(header.receiving_application, header.receiving_facility),
            receiving=(header.sending_application, header.sending_facility),
            message_type=response_type or message_type,
            control_id=f"ACK{header.control_id}"[:20],
            version=header.version,
            charset=header.charset,
            now=now,
        ),
        segment("MSA", record.answer, header.control_id, record.error),
    ]
    if record.answer != "AA":
        lines.append(_err(header, record))
    if response_type:
        lines += [_orc(order, accepted=record.answer == "AA") for order in orders]
    return "\r".join(lines) + "\r"


def _orc(order: OrderOutcome, *, accepted: bool) -> str:
    done, refused = RESPONSE_CONTROL.get(order.control, ("OK", "UA"))
    placer = [order.placer_order_number, order.placer_application]
    return segment("ORC", done if accepted else refused, placer, order.filler_order_number)
