"""One writer per DICOM socket (issue #15, finding 4): worklist answers over TLS, where an
`ssl.SSLSocket` must not be written by one thread while another reads it.

Every read and write on an association happens on one thread (seen through pynetdicom's
EVT_DATA_RECV / EVT_DATA_SENT, which fire on the thread that did the I/O); 1,000 answers
arrive whole through DCMTK `findscu +tls` and pynetdicom; a C-CANCEL mid-answer ends it
with 0xFE00; a peer that closes mid-answer gets its query aborted and counted, and the
listener keeps serving. The link is slowed (a pause after each PDU sent) where the
answer must still be running when the peer acts, as in test_worklist_cancel.py."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]

from broker.app import Broker
from support.brokers import module_broker
from support.certs import Pki, make_pki
from support.hl7peer import sample, send
from support.pdus import associate_rq, c_find_rq, read_pdu

ITEMS = 1000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(request: pytest.FixtureRequest, pki: Pki) -> Iterator[Broker]:
    """A TLS worklist of 1,000 steps (not a storage test: SQLite only)."""
    tls = {"cert": str(pki.server.cert), "key": str(pki.server.key), "ca": str(pki.ca), "require_client_cert": True}
    with module_broker(request, "sqlite", dicom={"host": "127.0.0.1", "port": 0, "tls": tls}) as instance:
        orders = [
            sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"TLS{n}", PO1002=f"TL{n:05d}")
            for n in range(ITEMS)
        ]
        send(instance.hl7.port, *orders)
        yield instance


def client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    context.load_cert_chain(pki.client.cert, pki.client.key)
    return context


def _associate(broker: Broker, pki: Pki) -> tuple[AE, object]:
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", broker.dicom.port, ae_title="BROKER", tls_args=(client_context(pki), "localhost"))
    assert assoc.is_established
    return ae, assoc


def _query() -> Dataset:
    query = Dataset()
    query.AccessionNumber = ""
    return query


def _slow_link(broker: Broker, seconds: float) -> None:
    broker.dicom.bind(evt.EVT_DATA_SENT, lambda _: time.sleep(seconds))


class ThreadsDoingIo:
    """The threads on which the listener's associations read and wrote."""

    def __init__(self, broker: Broker) -> None:
        self.threads: set[tuple[str, int]] = set()
        broker.dicom.bind(evt.EVT_DATA_SENT, self._sent)
        broker.dicom.bind(evt.EVT_DATA_RECV, self._received)

    def _sent(self, event: Event) -> None:
        self.threads.add(("write", threading.get_ident()))

    def _received(self, event: Event) -> None:
        self.threads.add(("read", threading.get_ident()))


def test_pynetdicom_over_tls_gets_1000_answers_read_and_written_on_one_thread(broker: Broker, pki: Pki) -> None:
    io = ThreadsDoingIo(broker)
    _, assoc = _associate(broker, pki)
    statuses = [int(status.Status) for status, _ in assoc.send_c_find(_query(), ModalityWorklistInformationFind)]  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert statuses == [0xFF00] * ITEMS + [0x0000]
    assert {kind for kind, _ in io.threads} == {"read", "write"}
    assert len({ident for _, ident in io.threads}) == 1, "reads and writes on more than one thread"


def test_dcmtk_findscu_over_tls_gets_1000_answers(broker: Broker, pki: Pki, tmp_path: Path) -> None:
    args = ["findscu", "-W", "-aet", "MODALITY1", "-aec", "BROKER", "-X", "-od", str(tmp_path)]
    args += ["+tls", str(pki.client.key), str(pki.client.cert), "+cf", str(pki.ca), "-k", "AccessionNumber="]
    args += ["127.0.0.1", str(broker.dicom.port)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**os.environ, "TCP_NODELAY": "1"})
    assert result.returncode == 0, result.stderr
    answers = [pydicom.dcmread(path) for path in tmp_path.glob("rsp*.dcm")]
    assert len(answers) == ITEMS
    assert len({answer.AccessionNumber for answer in answers}) == ITEMS


def test_c_cancel_over_tls_mid_answer_ends_with_fe00(broker: Broker, pki: Pki) -> None:
    _slow_link(broker, 0.002)
    _, assoc = _associate(broker, pki)
    statuses = []
    for status, _ in assoc.send_c_find(_query(), ModalityWorklistInformationFind, msg_id=9):  # type: ignore[attr-defined]
        statuses.append(int(status.Status))
        if len(statuses) == 1:
            assoc.send_c_cancel(9, assoc.accepted_contexts[0].context_id)  # type: ignore[attr-defined]
    assert statuses[-1] == 0xFE00
    assert 1 <= len(statuses) - 1 < ITEMS
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]


def _aborted(broker: Broker) -> float:
    registry = broker.services.metrics.registry
    return sum(
        registry.get_sample_value("broker_cfind_aborted_total", {"reason": reason}) or 0.0
        for reason in ("write_failed", "connection_lost")
    )


def test_peer_closing_over_tls_mid_answer_aborts_and_counts_the_query(broker: Broker, pki: Pki) -> None:
    _slow_link(broker, 0.002)
    before = _aborted(broker)
    plain = socket.create_connection(("127.0.0.1", broker.dicom.port), timeout=10)
    with client_context(pki).wrap_socket(plain, server_hostname="localhost") as sock:
        sock.sendall(associate_rq(calling="MODALITY1", abstract=ModalityWorklistInformationFind))
        assert read_pdu(sock)[0] == 0x02  # A-ASSOCIATE-AC
        sock.sendall(c_find_rq(_query()))
        assert read_pdu(sock)[0] == 0x04  # the first answer: the broker is mid-answer now
    deadline = time.monotonic() + 30
    while _aborted(broker) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _aborted(broker) == before + 1
    _, assoc = _associate(broker, pki)  # the listener serves the next peer
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
