"""What auditing costs a worklist C-FIND: the same queries against an in-process broker
with the audit trail off and on (each C-FIND then writes its Query audit message to the
outbox in its own transaction; the drain sends it to a UDP collector meanwhile).

    .venv/bin/python -m bench.audit_cost [--queries 300] [--orders 50]

Prints the median and p95 C-FIND time (request to final response, one association).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from bench.dicom_client import FindClient, Scp
from bench.procs import free_port
from broker.app import Broker
from broker.config import BrokerConfig
from broker.domain.audit import Action, Audited, AuditEvent, Query, Requestor
from broker.hl7.mllp import exchange
from broker.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def _sink() -> tuple[socket.socket, int]:
    """A UDP collector that reads and drops."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    threading.Thread(target=lambda: [sock.recv(65535) for _ in iter(int, 1)], daemon=True).start()
    return sock, int(sock.getsockname()[1])


def _config(database: Path, audit: bool, collector_port: int) -> BrokerConfig:
    upgrade(f"sqlite:///{database}", create=True)
    return BrokerConfig.model_validate({
        "database": {"url": f"sqlite:///{database}"},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "dicom": {"host": "127.0.0.1", "port": free_port()},
        "log_level": "WARNING",
        "audit": {"enabled": audit, "host": "127.0.0.1", "port": collector_port, "protocol": "udp"},
    })  # fmt: skip


def _fill(port: int, orders: int) -> None:
    template = (ROOT / "hl7/rad-2-placer-order/orm_o01_nw.hl7").read_bytes().replace(b"\r\n", b"\r")
    template = template.replace(b"\n", b"\r")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for n in range(orders):
            message = template
            for old in ("ORM0001", "PO1001", "FO1001", "ACC1001", "RP1001", "SPS1001", "9999.1.1001"):
                message = message.replace(old.encode(), f"{old[:-4]}{9000 + n}".encode())
            exchange(sock, message)


def _query() -> Dataset:
    step = Dataset()
    step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepStartDate = "CT", "", ""
    query = Dataset()
    query.PatientName, query.PatientID, query.AccessionNumber = "", "", ""
    query.ScheduledProcedureStepSequence = [step]
    return query


def measure(audit: bool, queries: int, orders: int, workdir: Path, collector_port: int) -> list[float]:
    broker = Broker(_config(workdir / f"audit-{audit}.db", audit, collector_port))
    broker.start()
    try:
        _fill(broker.hl7.port, orders)
        client = FindClient()
        with client.association(Scp("broker", broker.dicom.port, "BROKER")) as assoc:
            for _ in range(20):  # warm-up
                client.find(assoc, _query())
            return [client.find(assoc, _query()).seconds for _ in range(queries)]
    finally:
        broker.stop()


def record_alone(broker: Broker, queries: int) -> list[float]:
    """The part auditing adds to a C-FIND: render the Query message and commit it."""
    assert broker.services.audit is not None
    event = AuditEvent(Audited.QUERY, Action.EXECUTE, datetime.now(), requestor=Requestor("BENCHSCU", "127.0.0.1"),
                       query=Query("1.2.840.10008.5.1.4.31", _query_bytes(), "1.2.840.10008.1.2.1"))  # fmt: skip
    times = []
    for _ in range(queries):
        started = time.perf_counter()
        broker.services.audit.record(event)
        times.append(time.perf_counter() - started)
    return times


def _query_bytes() -> bytes:
    return encode(_query(), False, True) or b""


def _report(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[int(0.95 * len(times)) - 1]
    print(f"{label}: median {statistics.median(times) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--orders", type=int, default=50)
    args = parser.parse_args()
    sock, port = _sink()
    with tempfile.TemporaryDirectory() as tmp:
        for audit in (False, True, False, True):
            label = f"audit {'on ' if audit else 'off'}: {args.queries} C-FIND x {args.orders} matches"
            _report(label, measure(audit, args.queries, args.orders, Path(tmp), port))
        broker = Broker(_config(Path(tmp) / "record.db", True, port))
        broker.start()
        try:
            _report(f"Query audit write alone x {args.queries}", record_alone(broker, args.queries))
        finally:
            broker.stop()
    sock.close()


if __name__ == "__main__":
    main()
