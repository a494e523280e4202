"""Two brokers on one PostgreSQL (the scale-out store): HL7 may arrive at either, both
serve the worklist, and every status reaches the RIS exactly once, in order per order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from broker.app import Broker
from broker.domain.audit import Requestor
from broker.mapping.mpps import merge, performed_step_from
from broker.store.outbox import SqlOutboxQueue
from support.brokers import make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.postgres import PostgresServer
from support.recorder import settled

ORDERS = 20


@pytest.fixture
def two_brokers(postgres_server: PostgresServer, ris: RisListener) -> Iterator[tuple[Broker, Broker]]:
    with postgres_server.database() as url:
        first = Broker(make_config(ris.port, database_url=url))
        second = Broker(make_config(ris.port, database_url=url))
        first.start()
        second.start()
        yield first, second
        second.stop()
        first.stop()


def _order_and_perform(broker: Broker, n: int) -> None:
    nw = sample(
        "rad-2-placer-order/orm_o01_nw.hl7",
        ORM0001=f"SCALE{n:04d}", PO1001=f"PO{n:04d}", FO1001=f"FO{n:04d}", ACC1001=f"ACC{n:04d}",
        RP1001=f"RP{n:04d}", SPS1001=f"SPS{n:04d}", **{"9999.1.1001": f"9999.1.{n}"},
    )  # fmt: skip
    assert ack_code(send(broker.hl7.port, nw)[0]) == "AA"
    rules, uid = broker.profile.mpps, f"1.2.392.200036.9999.8.{n}"
    create = as_dataset(n_create(f"SPS{n:04d}", f"ACC{n:04d}", f"RP{n:04d}", f"1.2.392.200036.9999.1.{n}"))
    broker.pps_manager.rad6_modality_pps_in_progress(performed_step_from(create, uid, rules))
    done = as_dataset(n_set_final())
    broker.pps_manager.rad7_modality_pps_update(uid, lambda stored: merge(stored, done, rules))


def test_two_brokers_send_each_status_once_in_order(
    two_brokers: tuple[Broker, Broker], ris: RisListener, tmp_path: Path
) -> None:
    first, second = two_brokers
    for n in range(ORDERS):
        _order_and_perform(first if n % 2 else second, n)
    received = ris.wait_for(2 * ORDERS)
    by_order: dict[str, list[str]] = {}
    for message in received:
        by_order.setdefault(segment(message, "ORC")[2], []).append(segment(message, "ORC")[5])
    assert by_order == {f"PO{n:04d}^RIS": ["IP", "CM"] for n in range(ORDERS)}
    assert len(received) == 2 * ORDERS  # exactly once: nothing sent twice
    keys = ["AccessionNumber=ACC0003", "PatientID"]
    assert [a.AccessionNumber for a in findscu(first.dicom.port, keys, tmp_path)] == []  # completed: off the list
    send(first.hl7.port, sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7"))
    assert len(findscu(second.dicom.port, ["AccessionNumber"], tmp_path)) == 1  # seen by the other broker


def test_two_brokers_hold_a_refused_order_until_requeue(two_brokers: tuple[Broker, Broker], ris: RisListener) -> None:
    """R8 on PostgreSQL with two brokers draining: the RIS refuses order 1's IP (AE); no
    broker sends order 1's CM until the dead letter is requeued; the other orders flow."""
    first, second = two_brokers
    ris.script("AE", when=lambda message: segment(message, "ORC")[2] == "PO0001^RIS")
    for n in range(4):
        _order_and_perform(first if n % 2 else second, n)
    ris.wait_for(7)  # all but order 1's CM
    queue = SqlOutboxQueue(first.engine)
    [dead] = settled(lambda: queue.listing("dead", 10), lambda rows: len(rows) == 1)
    far = datetime.now() + timedelta(days=1)
    assert queue.lease_due(far, far) == []  # order 1's CM is held, not backing off
    assert second.services.dead_letters.requeue([dead.id], Requestor("test operator")) != []
    received = ris.wait_for(9)
    by_order: dict[str, list[str]] = {}
    for message in received:
        by_order.setdefault(segment(message, "ORC")[2], []).append(segment(message, "ORC")[5])
    assert by_order == {"PO0001^RIS": ["IP", "IP", "CM"], **{f"PO{n:04d}^RIS": ["IP", "CM"] for n in (0, 2, 3)}}
    assert len(settled(lambda: queue.listing("sent", 20), lambda rows: len(rows) == 8)) == 8  # exactly once
