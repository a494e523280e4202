"""Issue 7 'Done when': two `broker serve` processes on one PostgreSQL. Orders (250 in
`make test`; SCALE_ORDERS, 1,000 in `make soak`) arrive over HL7 split across both; each
order's MPPS N-CREATE goes to one broker and its N-SET to the other (a pynetdicom SCU);
both drain the outbox at once (row leases, FOR UPDATE SKIP LOCKED). The RIS must get
every status exactly once and, per order, IN PROGRESS before COMPLETED; housekeeping
runs once per interval between the two."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]
from sqlalchemy import create_engine, func, select

from broker.hl7.mllp import exchange
from broker.store import tables as t
from broker.store.housekeeping import rounds_run
from broker.store.outbox import WAITING
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, segment
from support.measure import size
from support.mpps import as_dataset, n_create, n_set_final
from support.net import free_port
from support.postgres import PostgresServer
from support.processes import BrokerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]  # 1,000 orders: 104-176 s on a shared 2-core box (load 6-22)

#: Four modalities on two brokers race for the same outbox rows from the first order on;
#: more orders lengthen the race, not its kinds.
ORDERS = size("SCALE_ORDERS", 250)
MODALITIES = 4  # clients at once, two per broker
HOUSEKEEPING_MINUTES = 0.02  # 1.2 s: dozens of rounds during the test


@dataclass
class Site:
    brokers: list[BrokerProcess]
    ris: RisListener
    database_url: str
    started: float


@pytest.fixture
def site(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Site]:
    ris, started = RisListener(free_port()).start(), time.monotonic()
    with postgres_server.database() as url:
        settings = {"housekeeping": {"interval_minutes": HOUSEKEEPING_MINUTES}, "log_level": "WARNING"}
        brokers = [BrokerProcess(tmp_path / name, ris.port, url, **settings) for name in ("a", "b")]
        try:
            for broker in brokers:
                broker.start(wait=False)  # together: the migration lock makes them take turns
            for broker in brokers:
                broker.wait_ready()
            yield Site(brokers, ris, url, started)
        finally:
            for broker in brokers:
                broker.stop()
            ris.stop()


def _order(n: int) -> bytes:
    return sample(
        "rad-2-placer-order/orm_o01_nw.hl7",
        ORM0001=f"SCALE{n:04d}", PO1001=f"PO{n:04d}", FO1001=f"FO{n:04d}", ACC1001=f"ACC{n:04d}",
        RP1001=f"RP{n:04d}", SPS1001=f"SPS{n:04d}", **{"9999.1.1001": f"9999.1.{n}"},
    )  # fmt: skip


def _associate(port: int) -> Association:
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ModalityPerformedProcedureStep, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
    assert assoc.is_established
    return assoc


def _ports(brokers: list[BrokerProcess], i: int) -> tuple[int, int, int]:
    """Modality i: HL7 to one broker, N-CREATE to the other, N-SET to the first."""
    one, other = brokers[i % 2], brokers[(i + 1) % 2]
    return one.hl7_port, other.dicom_port, one.dicom_port


def _modality(orders: range, hl7_port: int, create_port: int, set_port: int, failures: list[str]) -> None:
    """One modality's day: each order placed (HL7), started (N-CREATE) on one broker
    and completed (N-SET) on the other."""
    creates, sets = _associate(create_port), _associate(set_port)
    try:
        with socket.create_connection(("127.0.0.1", hl7_port), timeout=30) as sock:
            for n in orders:
                if ack_code(exchange(sock, _order(n))) != "AA":
                    failures.append(f"order {n} not accepted")
                    continue
                uid = f"1.2.392.200036.9999.8.{n}"
                create = as_dataset(n_create(f"SPS{n:04d}", f"ACC{n:04d}", f"RP{n:04d}", f"1.2.392.200036.9999.1.{n}"))
                status, _ = creates.send_n_create(create, ModalityPerformedProcedureStep, uid)
                done, _ = sets.send_n_set(as_dataset(n_set_final()), ModalityPerformedProcedureStep, uid)
                if status.Status != 0 or done.Status != 0:
                    failures.append(f"MPPS {n}: {status.Status:#06x} / {done.Status:#06x}")
    finally:
        creates.release()
        sets.release()


def test_two_broker_processes_share_orders_each_status_once_in_order(site: Site, tmp_path: Path) -> None:
    ris = site.ris
    started, failures = time.monotonic(), list[str]()
    modalities = [
        threading.Thread(target=_modality, args=(range(i, ORDERS, MODALITIES), *_ports(site.brokers, i), failures))
        for i in range(MODALITIES)
    ]
    for modality in modalities:
        modality.start()
    for modality in modalities:
        modality.join(timeout=240)
    assert not any(modality.is_alive() for modality in modalities), "clients still running"
    assert failures == []
    received = ris.wait_for(2 * ORDERS, timeout=60)
    elapsed = time.monotonic() - started
    _outbox_settled(site.database_url)  # nothing waiting: whatever was sent twice has been sent

    by_order: dict[str, list[str]] = {}
    for message in ris.received:
        by_order.setdefault(segment(message, "ORC")[2], []).append(segment(message, "ORC")[5])
    duplicates = len(ris.received) - 2 * ORDERS
    out_of_order = sum(statuses != ["IP", "CM"] for statuses in by_order.values())
    print(f"\n{ORDERS} orders on 2 brokers: {elapsed:.1f} s, {len(received)} delivered, "
          f"{duplicates} duplicates, {out_of_order} out of order")  # fmt: skip
    assert (duplicates, out_of_order, len(by_order)) == (0, 0, ORDERS)

    engine = create_engine(site.database_url)
    try:
        with engine.connect() as conn:
            states = dict(conn.execute(select(t.outbox.c.state, func.count()).group_by(t.outbox.c.state)).all())
        rounds = rounds_run(engine, "housekeeping")
    finally:
        engine.dispose()
    assert states == {"sent": 2 * ORDERS}
    running = time.monotonic() - site.started
    assert 1 <= rounds <= running / (HOUSEKEEPING_MINUTES * 60 * 0.9) + 1  # not once per broker
    assert [a.AccessionNumber for a in findscu(site.brokers[1].dicom_port, ["AccessionNumber=ACC0001"], tmp_path)] == []


def _outbox_settled(url: str) -> None:
    """Until no outbox row is waiting (pending or leased) on the shared database."""
    engine = create_engine(url)
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as conn:
                waiting = conn.execute(select(func.count()).where(t.outbox.c.state.in_(WAITING))).scalar_one()
            if not waiting:
                return
            assert time.monotonic() < deadline, f"{waiting} outbox rows still waiting"
            time.sleep(0.1)
    finally:
        engine.dispose()
