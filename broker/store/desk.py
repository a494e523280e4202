"""What the operator's console reads before acting on one record: a refused HL7
message with its raw text and the ERR it got (to replay), and an MPPS exception with
what it says of its patient and procedure (to reconcile). The dead letters come from
the outbox's own listing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from broker.store import mpps_log
from broker.store import tables as t
from broker.store.inbound_log import LoggedMessage


@dataclass(frozen=True)
class RefusedMessage(LoggedMessage):
    #: The ERR text the sender got (generic, as sent on the wire).
    error: str
    raw: bytes


def message(engine: Engine, message_id: int) -> RefusedMessage | None:
    """The inbound message with that log id, as received, with its answer."""
    m = t.inbound_messages
    stmt = select(
        m.c.id, m.c.received_at, m.c.sender, m.c.control_id, m.c.message_type, m.c.answer,
        m.c.error_code, m.c.error_location, m.c.error, m.c.raw,
    ).where(m.c.id == message_id)  # fmt: skip
    with engine.connect().execution_options(readonly=True) as conn:
        row = conn.execute(stmt).first()
    return RefusedMessage(**row._mapping) if row else None


@dataclass(frozen=True)
class PerformedSummary:
    """An MPPS as the modality described it: the side of the comparison an operator
    sets against each candidate order."""

    sop_instance_uid: str
    status: str
    performed_station_ae: str
    started: str
    patient_name: str
    patient_id: str
    birth_date: str
    accession_numbers: tuple[str, ...]
    description: str
    #: Why it is linked to no scheduled step; empty once linked.
    reason: str


def performed(engine: Engine, uid: str) -> PerformedSummary | None:
    p = t.performed_steps
    stmt = select(p.c.status, p.c.performed_station_ae, p.c.attributes, p.c.patient_id, p.c.unlinked_reason).where(
        p.c.sop_instance_uid == uid
    )
    with engine.connect().execution_options(readonly=True) as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    record: dict[str, Any] = json.loads(row.attributes)
    steps = record.get("00400270", {}).get("Value", [])
    return PerformedSummary(
        uid,
        row.status.value,
        row.performed_station_ae,
        mpps_log.started(row.attributes),
        _person_name(record.get("00100010", {})),
        row.patient_id,
        _first(record.get("00100030", {})),
        tuple(dict.fromkeys(a for item in steps if (a := _first(item.get("00080050", {}))))),
        _first(record.get("00400254", {})),
        row.unlinked_reason,
    )


def _first(element: dict[str, Any]) -> str:
    values = element.get("Value", [""])
    return str(values[0]) if values else ""


def _person_name(element: dict[str, Any]) -> str:
    """A DICOM JSON PN value as `A=I=P`."""
    value = element.get("Value", [{}])[0] if element.get("Value") else {}
    groups = [value.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")] if isinstance(value, dict) else []
    return "=".join(groups).rstrip("=")
