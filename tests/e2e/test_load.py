"""Load (RELIABILITY.md D1) against `broker serve` as a process: 200 associations held
at once, each doing C-FINDs, while 50 MPPS sequences and two HL7 order streams arrive.
Nothing may fail. With the limit reached, one association more gets A-ASSOCIATE-RJ
(transient, service-provider presentation, local limit exceeded) within 1 s.

The 200-association test is marked `load` (run by `make test`, and alone by `make
load`): pynetdicom runs two threads per association that poll every millisecond, so
200 held associations keep a CPU busy on their own; on a quiet 2-core machine both
backends take about a minute together (measured 54 s)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]

from support.hl7peer import sample, scheduled_order, send
from support.measure import no_hang
from support.mpps import as_dataset, n_create, n_set_final
from support.net import free_port
from support.pdus import associate_rq, c_find_rq, final_status, pdu, read_pdu
from support.processes import BrokerProcess
from support.senders import Hl7Sender, MppsSender, echo

pytestmark = pytest.mark.e2e

FINDERS = 200
FINDS_EACH = 2
MPPS_SEQUENCES = 50
STREAM_ORDERS = 100
WORKLIST_ITEMS = 10
LIMIT = FINDERS + 20  # the finders, the MPPS senders (5 at a time), some slack
A_ASSOCIATE_AC, A_RELEASE_RP = 0x02, 0x06


@pytest.fixture
def loaded_broker(tmp_path: Path, database_url: str) -> Iterator[BrokerProcess]:
    dicom = {"max_associations": LIMIT, "acse_timeout_seconds": 120, "network_timeout_seconds": 300}
    process = BrokerProcess(tmp_path, free_port(), database_url, dicom=dicom).start()
    yield process
    if process.process and process.process.poll() is None:
        process.kill()


def orders(prefix: str, count: int) -> list[bytes]:
    return [
        sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"{prefix}{n:05d}", PO1002=f"{prefix}{n:05d}")
        for n in range(count)
    ]


class Outcomes:
    """Every operation's result, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.operations = 0

    def run(self, name: str, operation: Callable[[], bool]) -> None:
        started = time.monotonic()
        try:
            ok = operation()
        except Exception as exc:  # a failed operation is a finding, not a crash of the test
            ok, name = False, f"{name}: {exc!r}"
        with self.lock:
            self.operations += 1
            self.latencies.append(time.monotonic() - started)
            if not ok:
                self.failures.append(name)


def worklist_query() -> Dataset:
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledStationAETitle = ""
    query = Dataset()
    query.PatientName = ""
    query.AccessionNumber = ""
    query.ScheduledProcedureStepSequence = [step]
    return query


def finder(port: int, held: threading.Barrier, outcomes: Outcomes, finds: list[float]) -> None:
    """One modality (raw PDUs: a blocking socket costs the test process nothing while
    it waits): associate, wait until all finders hold theirs, query, release."""
    with socket.create_connection(("127.0.0.1", port), timeout=240) as sock:
        sock.sendall(associate_rq(calling="MODALITY1", abstract=ModalityWorklistInformationFind))
        accepted = read_pdu(sock)[0] == A_ASSOCIATE_AC
        with contextlib.suppress(threading.BrokenBarrierError):
            held.wait(timeout=180)
        if not accepted:
            outcomes.run("associate", lambda: False)
            return
        for n in range(FINDS_EACH):
            started = time.monotonic()
            outcomes.run("C-FIND", lambda n=n: _find(sock, n + 1))  # type: ignore[misc]
            finds.append(time.monotonic() - started)
        sock.sendall(pdu(0x05, bytes(4)))
        outcomes.run("A-RELEASE", lambda: read_pdu(sock)[0] == A_RELEASE_RP)


def _find(sock: socket.socket, message_id: int) -> bool:
    sock.sendall(c_find_rq(worklist_query(), message_id))
    return bool(final_status(sock, expect_pending=WORKLIST_ITEMS) == 0x0000)


def mpps_sequences(port: int, outcomes: Outcomes, first: int, count: int) -> None:
    scu = MppsSender(port)
    for n in range(first, first + count):
        uid = f"1.2.392.200036.9999.10.{n}"
        create = scu.create(uid, as_dataset(n_create(f"L{n}", f"LACC{n}", f"LRP{n}", f"1.2.392.200036.9999.11.{n}")))
        outcomes.run("N-CREATE", lambda op=create: op() == 0x0000)  # type: ignore[misc]
        update = scu.set(uid, as_dataset(n_set_final()))
        outcomes.run("N-SET", lambda op=update: op() == 0x0000)  # type: ignore[misc]


def hl7_stream(port: int, outcomes: Outcomes, prefix: str) -> None:
    sender = Hl7Sender(port)
    for message in orders(prefix, STREAM_ORDERS):
        outcomes.run("HL7", lambda m=message: sender.send(m) == "AA")  # type: ignore[misc]
    sender.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


@pytest.mark.load
@pytest.mark.timeout(600)
def test_200_associations_with_mpps_and_hl7_streams_fail_nothing(loaded_broker: BrokerProcess, db_backend: str) -> None:
    send(
        loaded_broker.hl7_port,
        sample("rad-1-patient-registration/adt_a04.hl7"),
        *[scheduled_order(f"CT{n}", 2000 + n) for n in range(WORKLIST_ITEMS)],
    )
    outcomes, finds = Outcomes(), list[float]()
    held = threading.Barrier(FINDERS)
    threads = [
        threading.Thread(target=finder, args=(loaded_broker.dicom_port, held, outcomes, finds)) for _ in range(FINDERS)
    ]
    threads += [
        threading.Thread(target=mpps_sequences, args=(loaded_broker.dicom_port, outcomes, n * 10, 10))
        for n in range(MPPS_SEQUENCES // 10)
    ]
    threads += [threading.Thread(target=hl7_stream, args=(loaded_broker.hl7_port, outcomes, p)) for p in ("SA", "SB")]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    elapsed = time.monotonic() - started
    print(
        f"\nD1 {db_backend}: {FINDERS} associations held at once, {outcomes.operations} operations "
        f"({len(finds)} C-FIND, {FINDERS} A-RELEASE, {MPPS_SEQUENCES * 2} MPPS, {2 * STREAM_ORDERS} HL7), "
        f"{len(outcomes.failures)} failed, {elapsed:.1f} s, C-FIND p50 {percentile(finds, 0.5):.3f} s "
        f"p99 {percentile(finds, 0.99):.3f} s, all ops p99 {percentile(outcomes.latencies, 0.99):.3f} s"
    )
    assert not held.broken, "the 200 associations were not all held at once"
    assert outcomes.failures == []
    assert outcomes.operations == FINDERS * (FINDS_EACH + 1) + MPPS_SEQUENCES * 2 + 2 * STREAM_ORDERS


def test_association_beyond_the_limit_is_rejected_at_once(tmp_path: Path) -> None:
    process = BrokerProcess(tmp_path, free_port(), f"sqlite:///{tmp_path / 'broker.db'}", dicom={"max_associations": 5})
    process.start()
    try:
        ae = AE(ae_title="ECHOSCU")
        ae.add_requested_context(Verification)
        held = [ae.associate("127.0.0.1", process.dicom_port, ae_title="BROKER") for _ in range(5)]
        assert all(a.is_established for a in held)
        with socket.create_connection(("127.0.0.1", process.dicom_port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(associate_rq())
            pdu_type, body = read_pdu(sock)
            waited = time.monotonic() - started
        print(f"\nD1 limit: association 6 of 5 answered after {waited * 1000:.0f} ms")
        assert pdu_type == 0x03  # A-ASSOCIATE-RJ
        no_hang(waited, "D1 association beyond the limit rejected")
        assert tuple(body[1:4]) == (0x02, 0x03, 0x02)  # transient, service-provider (presentation), local limit
        for assoc in held:
            assoc.release()
        no_hang(echo(process.dicom_port), "C-ECHO after it")
    finally:
        process.kill()
