"""The Image Manager: receives RAD-4 Procedure Scheduled / RAD-13 Procedure Update over
MLLP and the MPPS the PPS Manager forwards over DICOM, and checks each against what
IHE SWF requires of it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import N_CREATE, N_SET
from pynetdicom.events import EventHandlerType
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from broker.dicom.status import NO_SUCH_SOP_INSTANCE, SUCCESS
from broker.simulate.hl7_peer import Hl7Receiver, field

#: RAD-4/13 forms (IHE SWF ORM^O01 + ZDS; SWF.b OMI^O23 + IPC) and the order controls they use.
_FORMS = {"ORM^O01": ("OBR-18", "ZDS-1"), "OMI^O23": ("IPC-1", "IPC-3")}
_CONTROLS = {"NW", "XO", "CA", "DC"}


def check_procedure_message(message: bytes) -> list[str]:
    """What is wrong with a RAD-4/13 message (empty: nothing)."""
    kind = "^".join(field(message, "MSH-9").split("^")[:2])
    if kind not in _FORMS:
        return [f"MSH-9 {kind!r} is not a RAD-4/13 form"]
    problems = [] if field(message, "ORC-1") in _CONTROLS else [f"ORC-1 {field(message, 'ORC-1')!r}"]
    accession, study = _FORMS[kind]
    problems += [
        f"{where} (Accession Number / Study UID) is empty"
        for where in (accession, study)
        if not field(message, where).split("^")[0]
    ]
    return problems


@dataclass(frozen=True)
class MppsMessage:
    operation: str  # create | set
    uid: str
    status: str
    problem: str = ""


class MppsRecorder:
    """An MPPS SCP that keeps every N-CREATE / N-SET; an N-SET of an instance it never
    saw is answered 0x0112 and kept as a problem."""

    def __init__(self, ae_title: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[MppsMessage] = []
        self._lock = threading.Lock()
        self._ae = AE(ae_title=ae_title)
        self._ae.add_supported_context(ModalityPerformedProcedureStep)
        self._address = (host, port)
        self._server: Any = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _create(self, event: evt.Event) -> tuple[int, Dataset]:
        status = str(event.attribute_list.get("PerformedProcedureStepStatus", ""))
        problem = "" if status == "IN PROGRESS" else f"N-CREATE with status {status!r}"
        self._keep(MppsMessage("create", str(cast(N_CREATE, event.request).AffectedSOPInstanceUID), status, problem))
        return SUCCESS, Dataset()

    def _set(self, event: evt.Event) -> tuple[int, Dataset]:
        uid = str(cast(N_SET, event.request).RequestedSOPInstanceUID)
        with self._lock:
            known = any(m.uid == uid for m in self.received if m.operation == "create")
        status = str(event.modification_list.get("PerformedProcedureStepStatus", ""))
        self._keep(MppsMessage("set", uid, status, "" if known else "N-SET of an instance never created"))
        return (SUCCESS if known else NO_SUCH_SOP_INSTANCE), Dataset()

    def _keep(self, message: MppsMessage) -> None:
        with self._lock:
            self.received.append(message)

    def start(self) -> MppsRecorder:
        handlers: list[EventHandlerType] = [(evt.EVT_N_CREATE, self._create), (evt.EVT_N_SET, self._set)]
        self._server = self._ae.start_server(self._address, block=False, evt_handlers=handlers)
        return self

    def stop(self) -> None:
        self._server.shutdown()


class ImageManagerSimulator:
    def __init__(self, ae_title: str = "IMAGEMGR", host: str = "127.0.0.1", hl7_port: int = 0, dicom_port: int = 0):
        self.hl7 = Hl7Receiver(host, hl7_port)
        self.mpps = MppsRecorder(ae_title, host, dicom_port)

    def problems(self) -> list[str]:
        found = [f"HL7 #{n}: {p}" for n, m in enumerate(self.hl7.received, 1) for p in check_procedure_message(m)]
        return found + [f"MPPS {m.operation} {m.uid}: {m.problem}" for m in self.mpps.received if m.problem]

    def start(self) -> ImageManagerSimulator:
        self.hl7.start()
        self.mpps.start()
        return self

    def stop(self) -> None:
        self.mpps.stop()
        self.hl7.stop()
