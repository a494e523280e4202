"""Part C: MPPS COMPLETED → the HL7 status at a live RIS (IHE RAD-3), end to end.

For each procedure a pynetdicom modality sends N-CREATE then N-SET COMPLETED; the
clock starts when the N-SET response arrives (the modality is done) and stops when a
real MLLP RIS listener receives that order's ORC-5 `CM`. Procedures run one after the
other, so each latency is the outbox path alone: commit, the drain poll, the send; a
random pause before each keeps them from falling into step with the poll.
"""

from __future__ import annotations

import random
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from bench import hl7_load, servers
from bench.dicom_client import set_nodelay
from bench.procs import Peers, free_port
from bench.worklist import Item, order_message

FIRST_INDEX = 900_000  # clear of the other parts' items
POLL_SECONDS = 0.2  # the broker's outbox poll (servers.BrokerServer)
END = b"\x1c\r"


@dataclass
class StatusResult:
    procedures: int
    latencies: list[float] = field(default_factory=list)


class TimedRis:
    """An MLLP RIS that answers AA and notes when each order's `CM` arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.completed: dict[str, float] = {}
        self.arrived = threading.Condition()
        ris = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while chunk := self.request.recv(65536):
                    buffer += chunk
                    while END in buffer:
                        frame, buffer = buffer.split(END, 1)
                        ris.note(frame.lstrip(b"\x0b"), time.perf_counter())
                        self.request.sendall(b"\x0bMSH|^~\\&|RIS||BROKER||20260101||ACK|1|P|2.3.1\rMSA|AA|1\r" + END)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def note(self, message: bytes, at: float) -> None:
        orc = next((line.split(b"|") for line in message.split(b"\r") if line.startswith(b"ORC")), None)
        if orc is not None and len(orc) > 5 and orc[5] == b"CM":
            with self.arrived:
                self.completed[orc[2].split(b"^")[0].decode()] = at
                self.arrived.notify_all()

    def wait(self, placer: str, timeout: float = 30.0) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: placer in self.completed, timeout):
                raise TimeoutError(f"no CM for {placer}")
            return self.completed[placer]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _create(item: Item) -> Dataset:
    ds = Dataset()
    step = Dataset()
    step.StudyInstanceUID, step.AccessionNumber = item.study_uid, item.accession
    step.RequestedProcedureID, step.ScheduledProcedureStepID = item.requested_procedure_id, item.sps_id
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientID, ds.Modality, ds.PerformedStationAETitle = item.patient_id, "CT", item.station
    ds.PerformedProcedureStepID = f"PPS{item.index}"
    ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = "20261123", "100000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    return ds


def _completed() -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate, ds.PerformedProcedureStepEndTime = "20261123", "101000"
    return ds


def run(workdir: Path, peers: Peers, procedures: int, sqlite_synchronous: str) -> StatusResult:
    ris = TimedRis()
    broker = servers.BrokerServer(
        workdir / "broker-c", max_matches=1000, sqlite_synchronous=sqlite_synchronous, ris_port=ris.port
    )
    peers.start(broker.peer)
    result = StatusResult(procedures)
    items = [Item(FIRST_INDEX + n) for n in range(procedures)]
    try:
        hl7_load.send(broker.hl7_port, [order_message(item, f"C{item.index}") for item in items], 1)
        ae = AE(ae_title="BENCHMOD")
        ae.add_requested_context(ModalityPerformedProcedureStep)
        assoc = ae.associate(
            "127.0.0.1", broker.dicom_port, ae_title=servers.BROKER_AE, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
        )
        print(f"[C] {procedures} procedures: MPPS COMPLETED → RIS ...", file=sys.stderr, flush=True)
        pauses = random.Random(7)
        for n, item in enumerate(items):
            time.sleep(pauses.uniform(0, POLL_SECONDS))  # completions land anywhere in the poll cycle
            uid = f"1.2.392.200036.9999.77.{n}"
            assoc.send_n_create(_create(item), ModalityPerformedProcedureStep, uid)
            status, _ = assoc.send_n_set(_completed(), ModalityPerformedProcedureStep, uid)
            done = time.perf_counter()
            if not status or int(status.Status) != 0:
                raise RuntimeError(f"N-SET answered {status}")
            result.latencies.append(ris.wait(item.placer) - done)
        assoc.release()
    finally:
        peers.stop(broker.peer)
        ris.close()
    return result
