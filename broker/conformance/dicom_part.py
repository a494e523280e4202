"""The DICOM Conformance Statement, in the sections of PS3.2 Annex N, read from the AE
the listener is built with (`build_ae`), the forwarding AE, the profile and the
configuration."""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE

from broker.config import BrokerConfig, CallerConfig, DicomConfig, TlsConfig
from broker.conformance.dicomweb_part import write_web_services
from broker.conformance.document import Document
from broker.conformance.specimen import worklist_item
from broker.dicom import status
from broker.dicom.ae import build_ae
from broker.dicom.forwarder import forwarding_ae
from broker.dicom.refusals import dimse_refusal
from broker.domain.errors import DuplicateRecord, IllegalTransition, InvalidInput, Problem, UnknownRecord
from broker.mapping.dicom_charsets import DEFINED_TERMS, SUPPORTED_TERMS, codec_name
from broker.mapping.mwl import RANGE_KEYS, STEP_KEYS, TOP_KEYS, UID_LIST_KEYS
from broker.mapping.profile import Profile
from broker.tls import TLS12_CIPHERS

Contexts = list[tuple[str, list[str]]]


def contexts(ae: AE, *, accepted: bool) -> Contexts:
    """(abstract syntax, transfer syntaxes) of the AE's supported or requested contexts."""
    found = ae.supported_contexts if accepted else ae.requested_contexts
    return [(str(cx.abstract_syntax), [str(ts) for ts in cx.transfer_syntax]) for cx in found]


def _name(uid: str) -> str:
    return UID(uid).name


def _context_rows(found: Contexts, role: str) -> list[list[str]]:
    return [
        [_name(sop), sop, _name(ts), ts, role, "None"] if i == 0 else ["", "", _name(ts), ts, "", ""]
        for sop, syntaxes in found
        for i, ts in enumerate(syntaxes)
    ]


_CONTEXT_HEADERS = ["Abstract Syntax", "UID", "Transfer Syntax", "UID", "Role", "Ext. Negotiation"]


class DicomStatement:
    """Writes the Annex N sections into a Document."""

    def __init__(self, config: BrokerConfig, profile: Profile) -> None:
        self.config, self.profile = config, profile
        self.scp = build_ae(config.dicom)
        self.scu = forwarding_ae(config.dicom.ae_title)
        self.accepted = contexts(self.scp, accepted=True)
        self.proposed = contexts(self.scu, accepted=False)

    def write(self, doc: Document) -> None:
        self._overview(doc)
        doc.table_of_contents("2 Table of Contents")
        self._introduction(doc)
        self._implementation_model(doc)
        self._ae_specification(doc)
        self._network_and_configuration(doc)
        write_web_services(doc, self.config)
        doc.heading(1, "5 Media Interchange")
        doc.text("The broker does not support Media Interchange.")
        self._character_sets(doc)
        self._security(doc)
        self._annexes(doc)

    def _overview(self, doc: Document) -> None:
        doc.heading(1, "1 Conformance Statement Overview")
        doc.text(
            f"The broker (AE title `{self.scp.ae_title}`) is the Order Filler / Department System Scheduler "
            "and Performed Procedure Step Manager of IHE Radiology Scheduled Workflow. It provides the "
            "Modality Worklist and receives Modality Performed Procedure Steps, which it forwards to the "
            "configured SCPs. It creates no composite instances and supports no media."
        )
        forwards = "Yes" if self.config.mpps_forward else "Yes (when `mpps_forward` is configured)"
        scu = {sop for sop, _ in self.proposed}
        sops = [sop for sop, _ in self.accepted] + [s for s in scu if s not in dict(self.accepted)]
        rows = [[_name(s), forwards if s in scu else "No", "Yes" if s in dict(self.accepted) else "No"] for s in sops]
        doc.table(["SOP Class", "User of Service (SCU)", "Provider of Service (SCP)"], rows)

    def _introduction(self, doc: Document) -> None:
        doc.heading(1, "3 Introduction")
        doc.heading(2, "3.1 Revision History")
        doc.table(
            ["Document Version", "Implementation Version Name", "Description"],
            [["generated", self.scp.implementation_version_name, "written by `broker conformance`"]],
        )
        doc.heading(2, "3.2 Audience and Remarks")
        doc.text(
            "For integrators connecting modalities, RIS and Image Managers. This statement is generated from "
            "the running configuration and mapping profile "
            f"(`{self.profile.name}`): regenerate it after changing either. DICOM conformance alone does not "
            "guarantee interoperability; test with the simulators (`broker simulate`)."
        )
        doc.heading(2, "3.3 References")
        doc.bullets(
            [
                "DICOM PS3.2 (Conformance), PS3.4 Annex K (Basic Worklist Management), Annex F (MPPS), "
                "PS3.5 (character sets), PS3.7 (DIMSE), PS3.8 (network)",
                "IHE Radiology Technical Framework, Scheduled Workflow (SWF, SWF.b): RAD-5, RAD-6, RAD-7",
            ]
        )

    def _implementation_model(self, doc: Document) -> None:
        doc.heading(1, "4 Networking")
        doc.heading(2, "4.1 Implementation Model")
        doc.heading(3, "4.1.1 Application Data Flow")
        doc.text(
            "Orders arrive over HL7 (see the HL7 Interface) and become Scheduled Procedure Steps. A modality "
            "queries the worklist (C-FIND) and reports its Performed Procedure Step (N-CREATE, N-SET); the "
            "broker updates the steps, sends the status to the RIS over HL7 (RAD-3) and forwards each MPPS "
            "message to the configured SCPs through a durable outbox."
        )
        doc.heading(3, "4.1.2 Functional Definition of AEs")
        doc.text(
            f"One AE, `{self.scp.ae_title}`, listens on one port for Verification, Modality Worklist "
            "Information Model - FIND and Modality Performed Procedure Step. As SCU it opens one short "
            "association per forwarded MPPS message."
        )
        doc.heading(3, "4.1.3 Sequencing of Real-World Activities")
        doc.text(
            "An order must have been received before its steps are on the worklist. N-SET is accepted only "
            "after the N-CREATE of the same instance, and only while the step is IN PROGRESS. Forwarded "
            "messages leave in the order they were received, per instance."
        )

    def _ae_specification(self, doc: Document) -> None:
        ae = self.scp
        doc.heading(2, "4.2 AE Specifications")
        doc.heading(3, f"4.2.1 {ae.ae_title} AE Specification")
        doc.heading(4, "4.2.1.1 SOP Classes")
        doc.table(
            ["SOP Class Name", "SOP Class UID", "SCU", "SCP"],
            [[_name(s), s, "Yes" if s in dict(self.proposed) else "No", "Yes"] for s, _ in self.accepted],
        )
        self._association_policies(doc)
        self._initiation_policy(doc)
        self._acceptance_policy(doc)

    def _association_policies(self, doc: Document) -> None:
        ae, dicom = self.scp, self.config.dicom
        doc.heading(4, "4.2.1.2 Association Policies")
        doc.table(
            ["Policy", "Value"],
            [
                ["Application Context Name", "1.2.840.10008.3.1.1.1"],
                ["Maximum PDU size received", f"{ae.maximum_pdu_size} bytes"],
                ["Maximum number of simultaneous associations accepted", ae.maximum_associations],
                ["Asynchronous operations window", "not supported (one outstanding operation)"],
                [
                    "Called AE title",
                    f"must be `{ae.ae_title}`, otherwise A-ASSOCIATE-RJ (1,1,7)" if ae.require_called_aet else "any",
                ],
                ["Calling AE title", _calling_policy(dicom)],
                [
                    "ACSE / DIMSE / network timeout",
                    f"{ae.acse_timeout} s / {ae.dimse_timeout} s / {ae.network_timeout} s",
                ],
                ["Implementation Class UID", ae.implementation_class_uid],
                ["Implementation Version Name", ae.implementation_version_name],
                [
                    "Maximum worklist matches per query",
                    f"{dicom.max_worklist_matches} (more: 0x{status.OUT_OF_RESOURCES:04X})",
                ],
            ],
        )

    def _initiation_policy(self, doc: Document) -> None:
        doc.heading(4, "4.2.1.3 Association Initiation Policy")
        targets = (
            ", ".join(f"`{t.ae_title}` at {t.host}:{t.port}" for t in self.config.mpps_forward) or "none configured"
        )
        doc.text(
            "Activity - Forward MPPS. For each MPPS N-CREATE or N-SET it accepted, the broker opens an "
            f"association to each forwarding SCP ({targets}), sends the same operation and releases it. "
            "A failure status is a dead letter (`broker outbox list`); a refused or lost association is "
            "retried with backoff. A repeated N-CREATE answered 0x0111 counts as delivered.",
            "Proposed Presentation Contexts:",
        )
        doc.table(_CONTEXT_HEADERS, _context_rows(self.proposed, "SCU"))

    def _acceptance_policy(self, doc: Document) -> None:
        doc.heading(4, "4.2.1.4 Association Acceptance Policy")
        doc.text(
            "Accepted Presentation Contexts. The broker accepts exactly these; any other abstract or transfer "
            "syntax is refused (abstract / transfer syntax not supported). SCP/SCU role selection and extended "
            "negotiation are not supported. Where several transfer syntaxes are proposed, the first one the "
            "requestor lists that is also supported is accepted."
        )
        doc.table(_CONTEXT_HEADERS, _context_rows(self.accepted, "SCP"))
        doc.heading(4, "4.2.1.5 SOP Specific Conformance")
        doc.heading(5, "Verification SCP")
        doc.text("C-ECHO is always answered Success (0x0000).")
        self._worklist(doc)
        self._mpps(doc)

    def _worklist(self, doc: Document) -> None:
        doc.heading(5, "Modality Worklist Information Model - FIND SCP")
        fold = "case-insensitive" if self.profile.dicom.fold_case_names else "case-sensitive"
        doc.text(
            f"Matching keys (PS3.4 C.2.2.2). Person names are matched {fold}, against any one component group "
            "(alphabetic, ideographic, phonetic) or group by group when the key contains `=`. Other keys in "
            "the identifier are not matched on and do not reduce the matches; they are returned (empty when "
            "the broker holds no value).",
        )
        doc.table(["Attribute", "Tag", "Matching"], _matching_rows())
        caller = (
            "; some callers only see their own station's steps (`dicom.callers`)" if self.config.dicom.callers else ""
        )
        doc.text(
            "Return keys: each answer carries exactly the keys the query asked for, in its shape (a sequence "
            "asked for empty returns the whole item). The broker holds values for these" + caller + ":"
        )
        doc.table(["Attribute", "Tag", "VR"], _return_rows(worklist_item()))
        doc.text(
            "A sequence asked for with one zero-length item is answered like one asked for with none: the whole "
            "item (PS3.4 C.2.2.2.6). Requested Procedure Priority (0040,1003) is the defined term the profile "
            "maps the order's HL7 priority to; any other HL7 priority is answered empty:"
        )
        doc.table(["HL7 priority", "Requested Procedure Priority"], sorted(self.profile.dicom.priorities.items()))
        doc.text("Statuses:")
        doc.table(
            ["Status", "Code", "Meaning"],
            [
                ["Pending", f"0x{status.PENDING:04X}", "one answer per matching scheduled step"],
                ["Success", f"0x{status.SUCCESS:04X}", "all matches sent"],
                ["Cancel", f"0x{status.CANCEL:04X}", "C-CANCEL received; no more answers"],
                [
                    "Refused: Out of Resources",
                    f"0x{status.OUT_OF_RESOURCES:04X}",
                    f"more than {self.config.dicom.max_worklist_matches} matches (the answer is never cut silently)",
                ],
                [
                    "Error: Identifier does not match SOP Class",
                    f"0x{status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS:04X}",
                    "a key value is malformed (e.g. a date that is not DA)",
                ],
                ["Failed: Unable to process", f"0x{status.UNABLE_TO_PROCESS:04X}", "any other failure"],
            ],
        )

    def _mpps(self, doc: Document) -> None:
        rules = self.profile.mpps
        doc.heading(5, "Modality Performed Procedure Step SCP")
        link = (
            "by its Accession Number (and Requested Procedure ID, if given) to the steps still on the worklist "
            "of the one active order holding it"
            if rules.link_by_accession
            else "not at all: it is kept as an exception (`broker mpps exceptions`, `broker mpps reconcile`)"
        )
        doc.bullets(
            [
                "N-CREATE must have Performed Procedure Step Status IN PROGRESS; without an Affected SOP Instance "
                "UID the broker creates one and returns it.",
                "N-CREATE requires: "
                + ", ".join(rules.create_required)
                + "; in each Scheduled Step Attributes Sequence item: "
                + ", ".join(rules.create_required_in_step)
                + ".",
                "Scheduled steps are linked by Scheduled Procedure Step ID; an item without one is linked "
                + link
                + ".",
                "A step is linked only when the MPPS names its patient (Patient ID equal; Issuer of Patient ID "
                "equal when both carry one) and, if the item quotes a Study Instance UID, its study. Otherwise no "
                "step is linked: the N-CREATE succeeds and the MPPS is kept as an exception with the attribute "
                "that disagreed (`broker mpps exceptions`); reconcile takes only an order of the same patient "
                "unless an administrator forces it (audited).",
                "N-SET may not carry: " + ", ".join(rules.set_not_allowed) + ".",
                "N-SET to COMPLETED or DISCONTINUED requires: "
                + ", ".join(rules.final_required)
                + "; after it the instance can no longer be updated.",
                "Linked scheduled steps follow the MPPS (STARTED, COMPLETED, DISCONTINUED); the RIS is told (RAD-3).",
                "Modality Performed Procedure Step Retrieve (N-GET, PS3.4 F.8): the attributes the request lists "
                "(all when it lists none); one the instance does not hold comes back zero-length.",
            ]
        )
        doc.table(["Status", "Error ID", "When"], _mpps_status_rows())

    def _network_and_configuration(self, doc: Document) -> None:
        dicom = self.config.dicom
        doc.heading(2, "4.3 Network Interfaces")
        doc.text(
            "TCP/IP over whatever physical network the host has; IPv4 and IPv6 (by the listen address "
            f"`dicom.host`, now `{dicom.host}`). TCP_NODELAY is set on accepted connections."
        )
        doc.heading(2, "4.4 Configuration")
        doc.heading(3, "4.4.1 AE Title / Presentation Address Mapping")
        remote = [[f"{t.name} (MPPS forwarding)", t.ae_title, f"{t.host}:{t.port}"] for t in self.config.mpps_forward]
        doc.table(
            ["Application Entity", "AE Title", "Address"],
            [["broker (local)", dicom.ae_title, f"{dicom.host}:{dicom.port}"], *remote],
        )
        doc.heading(3, "4.4.2 Parameters")
        values = dicom.model_dump(exclude={"callers"})
        doc.table(["Configuration key", "Value"], [[f"dicom.{k}", v] for k, v in values.items()])

    def _character_sets(self, doc: Document) -> None:
        doc.heading(1, "6 Support of Extended Character Sets")
        doc.text(
            "Specific Character Set (0008,0005) defined terms (PS3.3 C.12.1.1.2) the broker reads in queries "
            "and MPPS and writes in worklist answers; value 1 may be empty (the default repertoire, ISO-IR 6, "
            "with ISO 2022 code extensions):"
        )
        doc.table(["Defined term", "Codec"], [[f"`{term}`", codec_name(term)] for term in SUPPORTED_TERMS])
        unsupported = [f"`{term}`" for term in DEFINED_TERMS if term not in SUPPORTED_TERMS]
        if unsupported:
            doc.text(f"Not supported (a query naming them is answered in the sets below): {', '.join(unsupported)}.")
        doc.text(
            "A worklist answer is written in the set the query names when that set holds all the answer's "
            "text; otherwise in the first of these values, in order, that holds it (profile "
            f"`{self.profile.name}`). (0008,0005) is present only with a value: a plain ASCII answer carries "
            "the set the query named, or no (0008,0005) when the query named none."
        )
        doc.table(
            ["Preference", "Specific Character Set (0008,0005)"],
            [[i, f"`{cs}`"] for i, cs in enumerate(self.profile.dicom.character_sets, 1)],
        )

    def _security(self, doc: Document) -> None:
        dicom = self.config.dicom
        doc.heading(1, "7 Security")
        doc.bullets(
            [
                _tls_policy(dicom.tls) + " No User Identity negotiation.",
                "Calling AE titles: " + _calling_policy(dicom) + ".",
                "A wrong Called AE title is refused with A-ASSOCIATE-RJ (1,1,7).",
                *[_caller_policy(ae, caller) for ae, caller in sorted(dicom.callers.items())],
                "Patient data is logged only at log level DEBUG.",
            ]
        )

    def _annexes(self, doc: Document) -> None:
        doc.heading(1, "8 Annexes")
        doc.heading(2, "8.1 IOD Contents")
        doc.text("The broker creates no composite instances; the MPPS it forwards is the one it received.")
        doc.heading(2, "8.2 Data Dictionary of Private Attributes")
        doc.text("None.")
        doc.heading(2, "8.3 Coded Terminology and Templates")
        mapped = [
            [scheme, value, f"{t.value} ({t.scheme}) {t.meaning}".strip()]
            for scheme, codes in self.profile.codes.map.items()
            for value, t in codes.items()
        ]
        doc.text(
            "Procedure codes are shown as the order carries them, except where the profile maps them:"
            + ("" if mapped else " no code map is configured.")
        )
        if mapped:
            doc.table(["Scheme sent", "Code sent", "Code on the worklist"], mapped)
        doc.heading(2, "8.4 Private SOP Classes and Transfer Syntaxes")
        doc.text("None.")


def _calling_policy(dicom: DicomConfig) -> str:
    if not dicom.accept_unknown_callers:
        return "only " + ", ".join(f"`{t}`" for t in dicom.callers) + "; others get A-ASSOCIATE-RJ (1,1,3)"
    return "any"


def _caller_policy(ae_title: str, caller: CallerConfig) -> str:
    """One known caller's limits, as broker/dicom/policy.py applies them."""
    where = ", ".join(str(net) for net in caller.addresses) or "any address"
    services = ", ".join(caller.services)
    scope = "; sees only its own station's steps" if caller.station_only else ""
    return (
        f"Caller `{ae_title}`: from {where} (else A-ASSOCIATE-RJ (1,1,3)); services {services} "
        f"(other presentation contexts rejected, result 3){scope}."
    )


def _tls_policy(tls: TlsConfig | None) -> str:
    if tls is None:
        return "No TLS on the DICOM port in this configuration (enable with `dicom.tls`)."
    clients = "required" if tls.require_client_cert else ("checked when presented" if tls.ca else "not asked for")
    return (
        "DICOM port: TLS (PS3.15 B.12, BCP 195): TLS 1.2 and 1.3 only; TLS 1.2 cipher suites "
        f"`{TLS12_CIPHERS}`; client certificates {clients}."
    )


def _tag(keyword: str) -> str:
    element = Dataset()
    setattr(element, keyword, None)
    tag = element[keyword].tag
    return f"({tag.group:04X},{tag.element:04X})"


def _matching_rows() -> list[list[str]]:
    sequence = "Scheduled Procedure Step Sequence > "
    rows = [[kw, _tag(kw), "single value, wildcard, universal"] for kw in TOP_KEYS]
    rows += [[kw, _tag(kw), "list of UIDs, universal"] for kw in UID_LIST_KEYS]
    rows += [[sequence + kw, _tag(kw), "single value, wildcard, universal"] for kw in STEP_KEYS]
    rows += [
        [sequence + kw, _tag(kw), "range, single value, universal (date and time as one range)"] for kw in RANGE_KEYS
    ]
    return rows


def _walk(ds: Dataset, depth: int = 0) -> Iterator[list[str]]:
    for element in ds:
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        yield ["> " * depth + element.keyword, tag, element.VR]
        if element.VR == "SQ" and element.value:
            yield from _walk(element.value[0], depth + 1)


def _return_rows(item: Dataset) -> list[list[str]]:
    return list(_walk(item))


#: A representative of each refusal the MPPS SCP makes, with when it happens; the
#: status comes from `broker.errors`, the table that answers on the wire.
_MPPS_REFUSALS: list[tuple[Exception, str]] = [
    (InvalidInput("", "", Problem.MISSING), "a required attribute is missing"),
    (InvalidInput("", "", Problem.EMPTY), "a required attribute has no value"),
    (InvalidInput("", "", Problem.NOT_IN_TABLE), "a value is not allowed (N-CREATE status other than IN PROGRESS)"),
    (InvalidInput("", "", Problem.NOT_ALLOWED), "N-SET of an attribute not allowed in N-SET"),
    (DuplicateRecord("SOP Instance"), "N-CREATE of an instance that exists"),
    (UnknownRecord("SOP Instance"), "N-SET of an unknown instance"),
    (IllegalTransition("MPPS", "COMPLETED", "COMPLETED"), "N-SET of a COMPLETED or DISCONTINUED instance"),
    (RuntimeError(), "any other failure"),
]


def _mpps_status_rows() -> list[list[str]]:
    rows = [[f"0x{status.SUCCESS:04X}", "", "accepted and stored"]]
    for exc, when in _MPPS_REFUSALS:
        refusal = dimse_refusal(exc)
        error_id = f"0x{refusal.error_id:04X}" if refusal.error_id is not None else ""
        rows.append([f"0x{refusal.status:04X}", error_id, when])
    return rows
