"""Housekeeping (clock mocked, the rest real): MPPS left IN PROGRESS are flagged once,
finished orders past retention leave the worklist tables for the archive with their
MPPS, and brokers sharing a database run one round per interval between them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from broker.app import Broker
from broker.config import HousekeepingConfig
from broker.jobs.housekeeping import Housekeeper
from broker.store import tables as t
from broker.store.housekeeping import claim_round, rounds_run
from support.dicompeer import mpps
from support.hl7peer import sample, send
from support.mpps import n_create, n_set_final

CREATE = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
SCHEDULED = datetime(2026, 11, 23, 10, 0)


def _housekeeper(broker: Broker, now: datetime) -> Housekeeper:
    return Housekeeper(broker.engine, HousekeepingConfig(stale_after_hours=12, retention_days=30), clock=lambda: now)


def _count(broker: Broker, table: object) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_in_progress_mpps_flagged_once_after_the_limit(broker: Broker, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=CREATE)["status"] == 0
    assert _housekeeper(broker, datetime.now() + timedelta(hours=1)).run() == 0
    assert _housekeeper(broker, datetime.now() + timedelta(hours=13)).run() == 1
    assert _housekeeper(broker, datetime.now() + timedelta(hours=14)).run() == 0  # flagged once
    with broker.engine.connect() as conn:
        assert conn.execute(select(t.performed_steps.c.flagged_at)).scalar_one() is not None


def test_finished_order_archived_with_its_mpps_after_retention(broker: Broker, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"), sample("rad-2-placer-order/omg_o19_nw.hl7"))
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=CREATE)["affectedSopInstanceUid"])
    assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=n_set_final())["status"] == 0

    assert _housekeeper(broker, SCHEDULED + timedelta(days=29)).run() == 0  # within retention
    _housekeeper(broker, SCHEDULED + timedelta(days=31)).run()
    assert (_count(broker, t.orders), _count(broker, t.archived_orders), _count(broker, t.performed_steps)) == (1, 1, 0)
    with broker.engine.connect() as conn:
        record = json.loads(conn.execute(select(t.archived_orders.c.record)).scalar_one())
    assert record["accession_number"] == "ACC1001"
    assert record["procedures"][0]["steps"][0]["status"] == "COMPLETED"
    assert record["performed"][0]["uid"] == uid


def test_one_round_per_interval_whichever_broker_asks(broker: Broker) -> None:
    """Brokers sharing a database claim rounds in it: a second claim within the
    interval (another broker's scheduler, another phase) is refused."""
    start, interval = datetime(2026, 11, 23, 12, 0), timedelta(minutes=10)
    claims = [claim_round(broker.engine, "test-job", start + timedelta(minutes=m), interval) for m in (0, 3, 9, 12, 20)]
    assert claims == [True, False, True, False, True]
    assert rounds_run(broker.engine, "test-job") == 3
    assert claim_round(broker.engine, "test-job", start - timedelta(hours=1), interval)  # clock set back


def test_refused_messages_pruned_after_their_retention_in_batches(broker: Broker) -> None:
    """Issue #14 defect 7: refused messages (raw bytes and all) were kept forever."""
    unsupported = [
        sample("rad-2-placer-order/orm_o01_nw.hl7", ORM0001=f"JUNK{n}", **{"ORM^O01": "ZZZ^Z01"}) for n in range(3)
    ]
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"), *unsupported)
    answers = select(t.inbound_messages.c.answer).order_by(t.inbound_messages.c.id)
    with broker.engine.connect() as conn:
        assert list(conn.execute(answers).scalars()) == ["AA", "AR", "AR", "AR"]

    def housekeeper(days: int) -> Housekeeper:
        config = HousekeepingConfig(retention_days=30, refused_retention_days=10, prune_batch=1)
        return Housekeeper(broker.engine, config, clock=lambda: datetime.now() + timedelta(days=days))

    housekeeper(9).run()
    assert _count(broker, t.inbound_messages) == 4  # within both retentions
    housekeeper(11).run()
    with broker.engine.connect() as conn:
        assert list(conn.execute(answers).scalars()) == ["AA"]  # three refused, one per batch
    housekeeper(31).run()
    assert _count(broker, t.inbound_messages) == 0
