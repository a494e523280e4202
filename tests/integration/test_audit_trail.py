"""S4: the audit trail through real syslog collectors. Every event the broker audits,
driven over its real listeners (MLLP, findscu, dcmjs-dimse MPPS, a refused
association), reaches an RFC 5425 TLS collector exactly once, as RFC 5424 carrying XML
valid against the PS3.15 A.5.1 schema; a collector outage is spooled, nothing lost."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import func, select

from broker.app import Broker
from broker.store import tables as t
from broker.store.outbox import WAITING
from support.audit import event_key, patient_ids, valid_message
from support.brokers import make_config
from support.certs import Pki, make_pki
from support.dicompeer import findscu, mpps
from support.hl7peer import ack_code, sample, send
from support.measure import size
from support.mpps import n_create, n_set_final
from support.net import free_port
from support.syslog import SyslogMessage, TlsSyslogReceiver, UdpSyslogReceiver

STUDY = "1.2.392.200036.9999.1.1001"
#: RELIABILITY.md S4: how long the collector stays down (`make soak`: 300).
OUTAGE_SECONDS = size("S4_OUTAGE_SECONDS", 0)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def _broker(database_url: str, port: int, pki: Pki | None, protocol: str = "tls") -> Broker:
    tls = {"tls": {"ca": str(pki.ca), "cert": str(pki.client.cert), "key": str(pki.client.key)}} if pki else {}
    audit = {"enabled": True, "host": "127.0.0.1", "port": port, "protocol": protocol, "timeout_seconds": 5,
             "audit_source_id": "test-broker", "enterprise_site_id": "HOSPITAL", **tls}  # fmt: skip
    dicom = {"host": "127.0.0.1", "port": free_port(), "accept_unknown_callers": False, "callers": {"MODALITY1": {}}}
    senders = [{"application": application} for application in ("HIS", "RIS")]
    hl7 = {"host": "127.0.0.1", "port": free_port(), "allowed_senders": senders}
    broker = Broker(make_config(free_port(), database_url=database_url, audit=audit, dicom=dicom, hl7=hl7))
    broker.start()
    return broker


def _keys(received: list[SyslogMessage]) -> collections.Counter[tuple[str, str, str]]:
    return collections.Counter(event_key(valid_message(m.xml)) for m in received)


def _settled(broker: Broker, receiver: TlsSyslogReceiver | UdpSyslogReceiver, count: int) -> list[SyslogMessage]:
    """The `count` expected messages, once the outbox holds no audit message waiting:
    the sender sends only waiting rows, so nothing more (no duplicate) can follow."""
    receiver.wait_for(count)
    deadline = time.monotonic() + 15
    while _pending_audit(broker):
        assert time.monotonic() < deadline, "audit messages still waiting in the outbox"
        time.sleep(0.05)
    return list(receiver.received)


def _hl7(broker: Broker, name: str, expected: str = "AA", **replace: str) -> None:
    assert ack_code(send(broker.hl7.port, sample(name, **replace))[0]) == expected


def _drive_every_event(broker: Broker, workdir: Path) -> None:
    _hl7(broker, "rad-1-patient-registration/adt_a04.hl7")  # Patient C
    _hl7(broker, "rad-1-patient-registration/adt_a04.hl7")  # a resend, answered again: nothing new
    _hl7(broker, "rad-1-patient-registration/adt_a04.hl7", ADT0001="ADT0009", PAT001="PAT009")  # Patient C
    _hl7(broker, "rad-2-placer-order/orm_o01_nw.hl7")  # Order C
    _hl7(broker, "rad-2-placer-order/orm_o01_xo.hl7")  # Order U
    findscu(broker.dicom.port, ["PatientID=PAT001", "AccessionNumber"], workdir)  # Query
    created = mpps(broker.dicom.port, "create", workdir, dataset=n_create("SPS1001", "ACC1001", "RP1001", STUDY))
    assert created["status"] == 0
    uid = str(created["affectedSopInstanceUid"])
    assert mpps(broker.dicom.port, "set", workdir, uid=uid, dataset=n_set_final())["status"] == 0  # Procedure C, U
    _hl7(
        broker,
        "rad-2-placer-order/orm_o01_nw.hl7",
        ORM0001="ORM0002",
        PO1001="PO1002",
        FO1001="FO1002",
        ACC1001="ACC1002",
        RP1001="RP1002",
        SPS1001="SPS1002",
        **{"9999.1.1001": "9999.1.1002"},
    )  # Order C
    _hl7(broker, "rad-2-placer-order/orm_o01_ca.hl7")  # Order D
    _hl7(broker, "rad-12-patient-update/adt_a08.hl7", "AE", ADT0002="ADT0098", PAT001="NOBODY")  # rolled back
    _hl7(broker, "rad-12-patient-update/adt_a08.hl7")  # Patient U
    _hl7(broker, "rad-12-patient-update/adt_a40.hl7")  # Patient D (PAT009) + U (PAT001)
    _hl7(broker, "rad-12-patient-update/adt_a08.hl7", "AR", ADT0002="ADT0099", **{"|HIS|": "|ROGUE|"})  # Alert
    intruder = AE(ae_title="INTRUDER")
    intruder.add_requested_context(Verification)
    assert intruder.associate("127.0.0.1", broker.dicom.port, ae_title="BROKER").is_rejected  # Alert


EVERY_EVENT = {
    ("110100", "E", "110120"): 1,  # Application Activity: start
    ("110110", "C", ""): 2,  # Patient Record: two A04
    ("110109", "C", ""): 2,  # Order Record: two NW
    ("110109", "U", ""): 1,  # XO
    ("110112", "E", ""): 1,  # Query: one C-FIND
    ("110111", "C", ""): 1,  # Procedure Record: N-CREATE
    ("110111", "U", ""): 1,  # N-SET
    ("110109", "D", ""): 1,  # CA
    ("110110", "U", ""): 2,  # A08, A40 survivor
    ("110110", "D", ""): 1,  # A40 prior record
    ("110113", "E", "110126"): 2,  # Security Alert: HL7 sender not allowed, unknown calling AE
    ("110100", "E", "110121"): 1,  # Application Activity: stop
}


def test_every_event_exactly_once_through_an_rfc5425_collector(database_url: str, pki: Pki, tmp_path: Path) -> None:
    collector = TlsSyslogReceiver(free_port(), pki).start()
    try:
        broker = _broker(database_url, collector.port, pki)
        try:
            _drive_every_event(broker, tmp_path)
        finally:
            broker.stop()
        received = _settled(broker, collector, sum(EVERY_EVENT.values()))
    finally:
        collector.stop()
    assert _keys(received) == EVERY_EVENT
    assert {(m.pri, m.app, m.msgid) for m in received} == {(85, "swf-broker", "IHE+RFC-3881")}
    procedures = [valid_message(m.xml) for m in received if event_key(valid_message(m.xml))[0] == "110111"]
    assert [patient_ids(root) for root in procedures] == [["PAT001^^^HOSPITAL"]] * 2
    assert all(STUDY in [s.get("UID") for s in root.iter("StudyIDs")] for root in procedures)


def _pending_audit(broker: Broker) -> int:
    """Audit messages waiting in the outbox (pending, or leased by a drain)."""
    o = t.outbox.c
    stmt = select(func.count()).where(o.destination == "audit", o.state.in_(WAITING))
    with broker.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _register(broker: Broker, numbers: range) -> None:
    for n in numbers:
        _hl7(broker, "rad-1-patient-registration/adt_a04.hl7", ADT0001=f"ADT{n:04d}", PAT001=f"P{n:04d}")


def _register_for(broker: Broker, first: int, seconds: float) -> int:
    """Registrations from number `first`: 20, then one every 0.5 s until `seconds` have
    passed; the number after the last one."""
    _register(broker, range(first, first + 20))
    number, deadline = first + 20, time.monotonic() + seconds
    while time.monotonic() < deadline:
        _register(broker, range(number, number + 1))
        number += 1
        time.sleep(0.5)
    return number


@pytest.mark.timeout(120 + 2 * OUTAGE_SECONDS)
def test_collector_outage_is_spooled_and_nothing_is_lost(database_url: str, pki: Pki) -> None:
    """The collector goes down mid-stream (for S4_OUTAGE_SECONDS, `make soak`: 300, while
    events keep coming) and comes back on the same port: each event arrives once, none
    lost, none twice; while down they wait in the outbox."""
    port = free_port()
    collector = TlsSyslogReceiver(port, pki).start()
    broker = _broker(database_url, port, pki)
    try:
        _register(broker, range(1, 11))
        first = _settled(broker, collector, 11)  # start + 10 registrations
        collector.stop()
        down = time.monotonic()
        end = _register_for(broker, 11, OUTAGE_SECONDS)
        assert _pending_audit(broker) == end - 11  # committed with each registration, before its ACK
        collector = TlsSyslogReceiver(port, pki).start()
        outage = time.monotonic() - down
        second = _settled(broker, collector, end - 11)
    finally:
        broker.stop()
        collector.stop()
    registered = collections.Counter(p for m in first + second for p in patient_ids(valid_message(m.xml)))
    print(f"\nS4: collector down {outage:.0f} s, {end - 11} events spooled, {len(second)} delivered after")
    assert registered == {f"P{n:04d}^^^HOSPITAL": 1 for n in range(1, end)}


@pytest.fixture
def udp_collector() -> Iterator[UdpSyslogReceiver]:
    receiver = UdpSyslogReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def test_rfc5426_udp_collector_receives_each_message(database_url: str, udp_collector: UdpSyslogReceiver) -> None:
    broker = _broker(database_url, udp_collector.port, None, protocol="udp")
    try:
        _register(broker, range(1, 3))
        received = _settled(broker, udp_collector, 3)
    finally:
        broker.stop()
    assert _keys(received) == {("110100", "E", "110120"): 1, ("110110", "C", ""): 2}
