"""The HL7 interface (messages and segments accepted and sent, per profile) and the IHE
Integration Statement. Accepted types come from the intake's routing table, fields from
the profile, sent segments from rendering a specimen order with the broker's own
message writers, samples from the `hl7/` catalog."""

from __future__ import annotations

from pydantic import BaseModel

from broker.config import BrokerConfig
from broker.conformance.document import Document
from broker.conformance.specimen import filler_order_segments, procedure_segments, status_segments
from broker.hl7.ack import ERROR_TEXT
from broker.mapping.hl7_in import FieldPath, accepted_message_types
from broker.mapping.hl7_procedure import FILLER_ORDER_STATUS, ORDER_STATUS
from broker.mapping.profile import Profile
from broker.resources import resource_dir

CATALOG = resource_dir("hl7")

#: The IHE transaction each accepted message type belongs to (ADT: by trigger event).
_TRANSACTIONS = {
    "ADT": "RAD-12 Patient Update",
    "ORM": "RAD-2 Placer Order Management",
    "OMG": "RAD-2 Placer Order Management",
    "OMI": "RAD-4 Procedure Scheduled (from a scheduler)",
}
_REGISTRATIONS = {"ADT^A01", "ADT^A04", "ADT^A05"}


def _transaction(message_type: str) -> str:
    if message_type in _REGISTRATIONS:
        return "RAD-1 Patient Registration"
    return _TRANSACTIONS.get(message_type.partition("^")[0], "")


def _by_transaction() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for message_type in accepted_message_types():
        grouped.setdefault(_transaction(message_type), []).append(message_type)
    return grouped


def _samples(*, sent: bool) -> dict[str, list[str]]:
    """Catalog file names by the MSH-9 they hold (`TYPE^EVENT`): the messages the
    broker takes, or (`sent`) those it emits (RAD-3 and the `emitted/` folders)."""
    found: dict[str, list[str]] = {}
    for path in sorted(CATALOG.rglob("*.hl7")):
        name = str(path.relative_to(CATALOG))
        if sent != (name.startswith("rad-3-") or "/emitted/" in name):
            continue
        fields = path.read_bytes().split(b"\n", 1)[0].decode("ascii", errors="replace").split("|")
        kind = "^".join(fields[8].split("^")[:2]) if len(fields) > 8 else ""
        found.setdefault(kind, []).append(name)
    return found


def _field_rows(section: BaseModel) -> list[list[str]]:
    return [[name, ", ".join(paths) or "(not read)"] for name, paths in section.model_dump().items()]


def _segments_read(profile: Profile) -> list[str]:
    sections = (profile.hl7_in.patient, profile.hl7_in.order, profile.hl7_in.ipc)
    names = {FieldPath.parse(p).segment for s in sections for paths in s.model_dump().values() for p in paths}
    return ["MSH", *sorted(names - {"MSH"})]


class Hl7Statement:
    def __init__(self, config: BrokerConfig, profile: Profile) -> None:
        self.config, self.profile = config, profile

    def write(self, doc: Document) -> None:
        doc.heading(1, "9 HL7 Interface")
        self._general(doc)
        self._accepted(doc)
        self._sent(doc)
        self._answers(doc)

    def _general(self, doc: Document) -> None:
        hl7, profile = self.config.hl7, self.profile
        doc.heading(2, "9.1 General")
        doc.bullets(
            [
                f"HL7 v2 over MLLP, listening on {hl7.host}:{hl7.port}; frames over {hl7.max_frame_bytes} bytes close "
                f"the connection; idle connections close after {hl7.idle_timeout_seconds:g} s; at most "
                f"{hl7.max_connections} connections at once (one more is closed unanswered)"
                + (
                    f"; connections are served by {hl7.processes} intake processes, each handed the next one "
                    "when it serves the fewest."
                    if hl7.processes > 1
                    else "."
                ),
                "Each message is stored with its effect before it is acknowledged; a message sent again (same "
                "sender, same MSH-10) gets the same answer and is not applied twice.",
                "MSH-18 character sets accepted (empty: the first row): "
                + ", ".join(f"`{k or '(empty)'}` ({v})" for k, v in profile.hl7_in.charsets.items())
                + ".",
                f"Mapping profile `{profile.name}`: {profile.description}".rstrip(": "),
            ]
        )

    def _accepted(self, doc: Document) -> None:
        samples, answers = _samples(sent=False), self.profile.hl7_in.answers
        doc.heading(2, "9.2 Messages Accepted")
        doc.table(
            ["Message", "IHE transaction", "Answer", "Samples (hl7/)"],
            [
                [t, _transaction(t), answers.get(t, "ACK"), ", ".join(samples.get(t, [])) or "-"]
                for t in accepted_message_types()
            ],
        )
        doc.text(
            "Order messages: ORC-1 NW (new), XO (change), CA (cancel) and DC (discontinue); other order control "
            "codes are refused (AE, 103). Segments read: " + ", ".join(_segments_read(self.profile)) + ".",
            "Where each value is read (the first non-empty location wins):",
        )
        hl7_in = self.profile.hl7_in
        rows = [
            [f"{group}.{name}", where]
            for group, section in (("patient", hl7_in.patient), ("order", hl7_in.order), ("ipc", hl7_in.ipc))
            for name, where in _field_rows(section)
        ]
        doc.table(["Value", "HL7 location"], rows)

    def _sent(self, doc: Document) -> None:
        status, procedure = self.profile.status_out, self.profile.procedure_out
        ris = f"{self.config.ris.host}:{self.config.ris.port}" if self.config.ris else "not configured"
        doc.heading(2, "9.3 Messages Sent")
        doc.text(
            f"RAD-3 Filler Order Management (status) to the RIS ({ris}): {status.message_type}, HL7 {status.version}, "
            f"MSH-18 `{status.charset}`, ORC-1 `{status.order_control}`. Segments: "
            + ", ".join(status_segments(self.profile))
            + "."
        )
        doc.table(["Scheduled step status", "ORC-5"], list(status.order_status.items()))
        doc.text(
            f"RAD-3 Filler Order Management for orders made, changed or cancelled at the broker (its console and "
            f"API), to the RIS ({ris}): {self.profile.filler_order_out.message_type}, HL7 {status.version}, "
            f"MSH-18 `{status.charset}`, one ORC/OBR per scheduled step. For an order made at the broker, SN "
            "asks the RIS for its number (ORC-2 empty, ORC-3 the broker's); the RIS's answer is taken as an "
            "acknowledgement (MSA-1), and an ORC with ORC-1 `NA` in it gives the RIS's number (ORC-2), which "
            "the broker keeps: its later messages name the order by it in ORC-2 (before the answer, ORC-2 is "
            "empty and ORC-3 names it), and the RIS's later messages are found by it, or by ORC-3. For a RIS's "
            "order ORC-2 is the RIS's number."
        )
        doc.table(
            ["Event", "ORC-1", "ORC-5", "Segments"],
            [[event, control, FILLER_ORDER_STATUS[control], ", ".join(names)]
             for event, control, names in filler_order_segments(self.profile)],
        )  # fmt: skip
        managers = ", ".join(f"{m.name} ({m.host}:{m.port})" for m in self.config.image_managers) or "none configured"
        doc.text(
            f"RAD-4 Procedure Scheduled / RAD-13 Procedure Update to the Image Managers ({managers}): "
            f"{procedure.message_type}, HL7 {procedure.version}, MSH-18 `{procedure.charset}`."
        )
        doc.table(
            ["ORC-1", "ORC-5", "IHE transaction", "Segments"],
            [
                [control, ORDER_STATUS[control], "RAD-4" if control == "NW" else "RAD-13", ", ".join(segments)]
                for control, segments in procedure_segments(self.profile).items()
            ],
        )
        emitted = [f"{kind}: {', '.join(names)}" for kind, names in _samples(sent=True).items()]
        doc.text("Samples of sent messages (hl7/, for the default and the jahis profile):")
        doc.bullets(emitted)
        doc.text(
            "Sent messages wait in a durable outbox until the peer answers AA or CA; one order's messages "
            "leave in order."
        )

    def _answers(self, doc: Document) -> None:
        doc.heading(2, "9.4 Acknowledgements")
        doc.text(
            "AA: applied. AE: refused for its content (ERR names the location). AR: not stored, send again "
            "later (or an unsupported message type). ERR codes (HL7 table 0357):"
        )
        doc.table(["Code", "Meaning"], list(ERROR_TEXT.items()))


def write_integration_statement(doc: Document, config: BrokerConfig, profile: Profile) -> None:
    """IHE Integration Statement: the actors, profiles and transactions this build claims."""
    doc.heading(1, "10 IHE Integration Statement")
    doc.table(
        ["Integration Profile", "Actor", "Options"],
        [
            ["Scheduled Workflow (SWF)", "Order Filler / Department System Scheduler", "HL7 v2.3.1"],
            ["Scheduled Workflow (SWF)", "Performed Procedure Step Manager", "none"],
            [
                "Scheduled Workflow.b (SWF.b)",
                "Order Filler / Department System Scheduler",
                "HL7 v2.5.1 (OMG^O19, OMI^O23)",
            ],
            ["Scheduled Workflow.b (SWF.b)", "Performed Procedure Step Manager", "none"],
        ],
    )
    forward = ", ".join(t.ae_title for t in config.mpps_forward) or "none configured"
    doc.table(
        ["Transaction", "Role", "Form"],
        [
            *[[tx, "receiver", ", ".join(types)] for tx, types in _by_transaction().items()],
            ["RAD-3 Filler Order Management", "sender", profile.status_out.message_type],
            ["RAD-4 Procedure Scheduled", "sender", profile.procedure_out.message_type],
            ["RAD-13 Procedure Update", "sender", profile.procedure_out.message_type],
            ["RAD-5 Modality Worklist Provided", "SCP", "MWL C-FIND"],
            [
                "RAD-6/7 Modality PPS In Progress / Completed",
                "SCP, and forwarder",
                f"MPPS N-CREATE/N-SET (to {forward})",
            ],
        ],
    )
    _atna(doc, config)


def _atna(doc: Document, config: BrokerConfig) -> None:
    """ATNA as this configuration runs it: the audit trail (ITI-20) and TLS (ITI-19)."""
    audit = config.audit
    if not audit.enabled:
        doc.text(
            "Audit Trail and Node Authentication (ATNA), as Secure Application (ITI-19 Authenticate Node, "
            "ITI-20 Record Audit Event), is built in and off in this configuration (`audit.enabled`)."
        )
        return
    secured = [name for name, tls in (("HL7", config.hl7.tls), ("DICOM", config.dicom.tls)) if tls] or ["none"]
    where = f"{audit.host}:{audit.port}" if audit.host else "kept locally only (no collector configured)"
    doc.table(
        ["Integration Profile", "Actor", "Options"],
        [
            [
                "Audit Trail and Node Authentication (ATNA)",
                "Secure Application",
                "ATX: TLS Syslog" if audit.protocol == "tls" else "ATX: UDP Syslog",
            ]
        ],
    )
    doc.bullets(
        [
            f"ITI-20 Record Audit Event: DICOM audit messages (PS3.15 A.5) as RFC 5424 syslog to {where}.",
            f"ITI-19 Authenticate Node: TLS (PS3.15 B.12, BCP 195) on the listeners: {', '.join(secured)}.",
        ]
    )
