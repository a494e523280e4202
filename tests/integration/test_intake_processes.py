"""#17 HL7 intake in several processes (`hl7.processes: 2`), on SQLite and PostgreSQL:
connections are handed to the intake process serving the fewest; orders sent at once
over four connections are each applied once; the same message sent on two connections
served by two processes is applied once and both are answered AA; the broker's /metrics
counts what the intake processes received; an intake process that is killed is
replaced; and stopping the broker ends them."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, Table, event, func, select

from broker.app import Broker, intake_setup
from broker.config import BrokerConfig, WebConfig
from broker.hl7.mllp import exchange
from broker.hl7.processes import IntakeProcesses
from broker.metrics import Metrics
from broker.store import tables as t
from broker.store.housekeeping import prune_logs
from support.brokers import make_config
from support.certs import Pair, Pki, make_pki
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, send
from support.recorder import settled

CONNECTIONS, ORDERS_EACH = 4, 15
PRUNE_BATCH, PRUNE_BATCHES, PRUNE_MESSAGES = 1000, 60, 10
LONG_AGO = datetime(2020, 1, 1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    instance = Broker(
        make_config(ris.port, database_url=database_url, hl7={"host": "127.0.0.1", "port": 0, "processes": 2})
    )
    instance.start()
    yield instance
    instance.stop()


def _processes(broker: Broker) -> IntakeProcesses:
    assert broker.intake_processes is not None
    return broker.intake_processes


def _connect(broker: Broker) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.hl7.port), timeout=30)


def _count(broker: Broker, table: Table) -> int:
    return _rows(broker.engine, table)


def _rows(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _client(pki: Pki, identity: Pair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


def test_connections_are_spread_and_their_orders_applied_once_each(broker: Broker) -> None:
    processes = _processes(broker)
    with ExitStack() as stack:
        links = [stack.enter_context(_connect(broker)) for _ in range(CONNECTIONS)]
        assert settled(processes.served_by_each, lambda counts: counts == [2, 2]) == [2, 2]
        answers: dict[int, list[str]] = {}

        def sender(n: int) -> None:
            orders = [scheduled_order(f"{n}x{i}", n * 100 + i) for i in range(ORDERS_EACH)]
            answers[n] = [ack_code(exchange(links[n], order)) for order in orders]

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert answers == {n: ["AA"] * ORDERS_EACH for n in range(CONNECTIONS)}
    assert _count(broker, t.orders) == CONNECTIONS * ORDERS_EACH
    assert _count(broker, t.inbound_messages) == CONNECTIONS * ORDERS_EACH
    assert settled(processes.served_by_each, lambda counts: counts == [0, 0]) == [0, 0]


def test_one_message_sent_to_two_processes_at_once_is_applied_once(broker: Broker) -> None:
    order = sample("rad-2-placer-order/orm_o01_nw.hl7")
    with _connect(broker) as first, _connect(broker) as second:
        assert settled(_processes(broker).served_by_each, lambda counts: counts == [1, 1]) == [1, 1]
        codes: list[str] = []
        threads = [
            threading.Thread(target=lambda s=s: codes.append(ack_code(exchange(s, order)))) for s in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert codes == ["AA", "AA"]
    assert _count(broker, t.orders) == 1
    assert _count(broker, t.inbound_messages) == 1


def test_the_brokers_metrics_count_what_the_intake_processes_received(broker: Broker) -> None:
    with _connect(broker) as link:
        assert ack_code(exchange(link, scheduled_order("m1", 9001))) == "AA"
        assert ack_code(exchange(link, b"MSH|^~\\&|RIS|HOSP|BROKER|HOSP|20261204||ZZZ^Z01|Z1|P|2.5.1\r")) != "AA"

    def received() -> float:
        value = broker.services.metrics.registry.get_sample_value(
            "broker_hl7_received_total", {"message_type": "ORM^O01"}
        )
        return value or 0.0

    assert settled(received, lambda value: value == 1.0) == 1.0
    registry = broker.services.metrics.registry
    assert registry.get_sample_value("broker_hl7_acked_total", {"message_type": "ORM^O01", "code": "AA"}) == 1.0
    assert registry.get_sample_value("broker_hl7_errors_total", {"message_type": "other", "code": "AR"}) == 1.0


def test_an_intake_process_that_is_killed_is_replaced(broker: Broker) -> None:
    processes = _processes(broker)
    before = processes.pids()
    assert None not in before
    os.kill(before[0], signal.SIGKILL)  # type: ignore[arg-type]
    after = settled(processes.pids, lambda pids: pids[0] not in (None, before[0]) and processes.serving() == 2)
    assert after[0] != before[0] and after[1] == before[1]
    registry = broker.services.metrics.registry
    assert registry.get_sample_value("broker_hl7_intake_restarts_total") == 1.0
    assert registry.get_sample_value("broker_hl7_intake_processes_serving") == 2.0
    with _connect(broker) as one, _connect(broker) as two:
        assert [ack_code(exchange(s, scheduled_order(f"k{n}", 9100 + n))) for n, s in enumerate((one, two))] == [
            "AA",
            "AA",
        ]


def test_an_intake_process_serves_mllp_over_tls(database_url: str, ris: RisListener, tmp_path: Path) -> None:
    """The handed connection's TLS handshake is the intake process's (its own context
    from the same configuration); a client without a certificate is refused there."""
    pki = make_pki(tmp_path / "pki")
    tls = {"cert": str(pki.server.cert), "key": str(pki.server.key), "ca": str(pki.ca), "require_client_cert": True}
    hl7 = {"host": "127.0.0.1", "port": 0, "processes": 2, "tls": tls}
    instance = Broker(make_config(ris.port, database_url=database_url, hl7=hl7))
    instance.start()
    try:
        [ack] = send(instance.hl7.port, scheduled_order("t1", 9300), tls=_client(pki, pki.client))
        assert ack_code(ack) == "AA"
        with pytest.raises((ssl.SSLError, ConnectionError)):
            send(instance.hl7.port, scheduled_order("t2", 9301), tls=_client(pki, None))
        assert _count(instance, t.orders) == 1
    finally:
        instance.stop()


def test_a_message_to_an_intake_process_is_not_kept_waiting_by_a_long_prune(
    database_url: str, ris: RisListener
) -> None:
    """The prune runs here (another process than the intake process), batch after
    batch; each message sent meanwhile is ACKed within two of its batches (the one under
    way and, at most, one more), all of them before the prune is done: the intake
    process got the writer between batches (the file lock is not handed on in order:
    without the prune's pause, messages waited for many batches)."""
    instance = Broker(
        make_config(ris.port, database_url=database_url, hl7={"host": "127.0.0.1", "port": 0, "processes": 2})
    )
    _processes(instance).start()
    instance.hl7.start()
    engine = instance.engine
    try:
        _sent_outbox_backlog(engine, PRUNE_BATCH * PRUNE_BATCHES)
        batches = threading.Semaphore(0)
        done = [0]  # the prune's batches committed (nothing else writes through this engine here)

        def committed(_conn: object) -> None:
            done[0] += 1
            batches.release()

        event.listen(engine, "commit", committed)
        pruning = threading.Thread(target=prune_logs, args=(engine, datetime.now(), datetime.now(), PRUNE_BATCH))
        pruning.start()
        assert batches.acquire(timeout=30)  # the first batch is done: the prune is under way
        waited = []
        with _connect(instance) as link:
            for n in range(PRUNE_MESSAGES):
                before = done[0]
                assert ack_code(exchange(link, scheduled_order(f"p{n}", 9400 + n))) == "AA"
                waited.append(done[0] - before)
        left = _rows(engine, t.outbox)
        pruning.join(timeout=120)
        assert max(waited) <= 2, waited
        assert left > 0
        assert _rows(engine, t.outbox) == 0
    finally:
        instance.hl7.stop()
        instance.services.close()


def _sent_outbox_backlog(engine: Engine, rows: int) -> None:
    """`rows` sent outbox rows, all past retention."""
    with engine.begin() as conn:
        conn.execute(t.outbox.insert(), [
            {"destination": "ris", "ordering_key": f"old-{n}", "payload": b"x" * 200, "state": "sent", "attempts": 1,
             "created_at": LONG_AGO, "next_attempt_at": LONG_AGO, "sent_at": LONG_AGO, "last_error": ""}
            for n in range(rows)
        ])  # fmt: skip


def test_stopping_the_broker_ends_its_intake_processes(database_url: str, ris: RisListener) -> None:
    instance = Broker(
        make_config(ris.port, database_url=database_url, hl7={"host": "127.0.0.1", "port": 0, "processes": 2})
    )
    instance.start()
    pids = _processes(instance).pids()
    with _connect(instance) as link:
        assert ack_code(exchange(link, scheduled_order("s1", 9200))) == "AA"
        instance.stop()
        assert link.recv(1) == b""  # the intake process closed it
    for pid in pids:
        assert pid is not None
        with pytest.raises(ChildProcessError):  # reaped: gone
            os.waitpid(pid, os.WNOHANG)


def test_an_intake_process_is_configured_as_the_broker_but_for_the_web_side(tmp_path: Path) -> None:
    """Everything but `web` (API tokens) reaches it unchanged: a second reading of the
    JSON equals the broker's configuration without its web section."""
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    pki = make_pki(tmp_path / "pki")
    tls = {"cert": str(pki.server.cert), "key": str(pki.server.key), "ca": str(pki.ca)}
    example["hl7"].update(processes=3, tls=tls, allowed_senders=[{"application": "RIS"}])
    example["dicom"]["callers"] = {"CT01": {"station_only": True, "addresses": ["10.0.0.0/8", "::1"]}}
    example["image_managers"] = [{"name": "im", "host": "127.0.0.1", "port": 2576, "tls": tls}]
    example["web"]["tokens"] = [{"name": "ris-team", "role": "admin", "token": "s" * 32}]
    config = BrokerConfig.model_validate(example)
    again = BrokerConfig.model_validate_json(intake_setup(config))
    assert again == config.model_copy(update={"web": WebConfig()})
    assert again.hl7.processes == 3 and again.dicom.callers["CT01"].addresses == config.dicom.callers["CT01"].addresses


def test_an_intake_process_that_cannot_start_fails_the_start_and_none_is_left() -> None:
    """The broker does not start with fewer intake processes than configured; none of
    those it started goes on running, nor is started again."""
    metrics = Metrics()
    processes = IntakeProcesses(2, [sys.executable, "-c", "import sys; sys.exit(3)"], b"{}", metrics)
    with pytest.raises(RuntimeError, match="did not start"):
        processes.start()
    assert processes.stopping and processes.serving() == 0
    for pid in processes.pids():
        assert pid is not None
        with pytest.raises(ChildProcessError):  # reaped: gone
            os.waitpid(pid, os.WNOHANG)
    assert metrics.registry.get_sample_value("broker_hl7_intake_processes_serving") == 0.0
