"""RELIABILITY.md R9, the store pulled away (issue #14, defect 6): the SQLite file
deleted, replaced or made read-only under a running broker. After the change no
message is answered AA (AR with ERR 207 instead, a resend of an accepted one
included), an MPPS gets a failure status, `/ready` answers 503, the operator is alerted
once, and no new database appears; a restart refuses to create one."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from broker.app import Broker, Services
from broker.store.migrate import DatabaseMissing
from broker.store.watch import STORE
from support.audit import event_key, valid_message
from support.brokers import make_config
from support.dicompeer import mpps
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, segment, send
from support.mpps import n_create
from support.net import free_port
from support.recorder import AlertRecorder
from support.syslog import UdpSyslogReceiver
from support.web import client, web_port, web_section


def _delete(path: Path) -> None:
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)


def _replace(path: Path) -> None:
    """A copy moved over the original (a restore from backup does this): same content
    at the moment of the copy, another inode."""
    copy = path.with_suffix(".restored")
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    os.replace(copy, path)


def _read_only(path: Path) -> None:
    path.chmod(0o444)


CHANGES: dict[str, Callable[[Path], None]] = {"deleted": _delete, "replaced": _replace, "read-only": _read_only}


@pytest.fixture
def watched(tmp_path: Path, ris: RisListener) -> Iterator[tuple[Broker, Path, AlertRecorder]]:
    path = tmp_path / "broker.db"
    alerts = AlertRecorder()
    broker = Broker(make_config(ris.port, database_url=f"sqlite:///{path}", web=web_section()), alerts)
    broker.start()
    yield broker, path, alerts
    broker.stop()


@pytest.mark.parametrize("change", list(CHANGES))
def test_no_AA_after_the_store_was_pulled_away(
    watched: tuple[Broker, Path, AlertRecorder], change: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker, path, alerts = watched
    first = scheduled_order("7001", 7001)
    [before] = send(broker.hl7.port, first)
    assert ack_code(before) == "AA"
    with client(web_port(broker)) as web:
        assert web.get("/ready").status_code == 200

    CHANGES[change](path)

    with caplog.at_level(logging.ERROR, logger="broker.store.watch"):
        answers = send(broker.hl7.port, scheduled_order("7002", 7002), first)  # a new one, and a resend
    assert [ack_code(a) for a in answers] == ["AR", "AR"]
    assert all(segment(a, "ERR")[1].endswith("^207&Application internal error&HL70357") for a in answers)
    created = mpps(broker.dicom.port, "create", tmp_path, dataset=n_create("SPS7001", "ACC7001", "RP7001", "1.2.3"))
    assert created["status"] == 0x0110
    with client(web_port(broker)) as web:
        ready = web.get("/ready")
    assert ready.status_code == 503
    assert change in ready.json()["status"]
    assert [(kind, peer) for kind, peer, _ in alerts.received] == [(STORE, str(path))]  # once, not per message
    assert [r.getMessage() for r in caplog.records if change in r.getMessage()]
    if change == "deleted":
        assert not path.exists()  # no new, empty database took its place


def test_serve_never_creates_a_database(tmp_path: Path, ris: RisListener) -> None:
    path = tmp_path / "broker.db"
    config = make_config(ris.port, database_url=f"sqlite:///{path}")  # creates it, as `db upgrade --create`
    path.unlink()
    with pytest.raises(DatabaseMissing, match="broker db upgrade --create"):
        Services(config)
    assert not path.exists()
    path.touch()  # an empty file is no broker database either
    with pytest.raises(DatabaseMissing, match="no broker schema"):
        Services(config)


def test_a_replaced_file_is_not_opened_by_new_connections(
    watched: tuple[Broker, Path, AlertRecorder], tmp_path: Path
) -> None:
    """The pool's next connection must not serve the other file's worklist."""
    broker, path, _ = watched
    shutil.copy(path, tmp_path / "other.db")
    os.replace(tmp_path / "other.db", path)
    broker.engine.dispose()  # every pooled connection to the original is gone
    [reply] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    assert ack_code(reply) == "AR"
    with pytest.raises(Exception, match="not the file opened at start"), broker.engine.connect():
        pass


def test_the_alert_is_audited_though_the_outbox_is_gone(tmp_path: Path, ris: RisListener) -> None:
    """The audit trail's outbox lives in the database that was pulled away: the Security
    Alert goes straight to the collector instead."""
    path = tmp_path / "broker.db"
    collector = UdpSyslogReceiver(free_port()).start()
    audit = {"enabled": True, "host": "127.0.0.1", "port": collector.port, "protocol": "udp"}
    broker = Broker(make_config(ris.port, database_url=f"sqlite:///{path}", audit=audit))
    broker.start()
    try:
        collector.wait_for(1)  # application start, through the outbox
        _delete(path)
        [reply] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        assert ack_code(reply) == "AR"
        alerts = [
            root
            for root in (valid_message(m.xml) for m in collector.wait_for(2))
            if event_key(root)[0] == "110113"  # Security Alert
        ]
    finally:
        broker.stop()
        collector.stop()
    [alert] = alerts
    assert "was deleted" in "".join(alert.itertext())


def test_broker_serve_exits_2_instead_of_creating_a_database(tmp_path: Path) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path / 'gone' / 'broker.db'}"}}))
    served = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert served.returncode == 2
    assert "broker db upgrade --create" in served.stderr
    assert not (tmp_path / "gone").exists()
