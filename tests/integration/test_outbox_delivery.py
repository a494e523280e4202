"""Status messages to the RIS through the durable outbox: held while the RIS is down,
then delivered exactly once and in order per order. AR and no answer are retried; an
AE makes a dead letter that holds its order's later messages (never out of order at the
RIS) until an operator requeues or skips it, while other orders flow."""

from __future__ import annotations

import subprocess
import sys
from base64 import b64decode
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from lxml import etree
from sqlalchemy import select

from broker.app import Broker, Services
from broker.domain.audit import Requestor
from broker.mapping.mpps import merge, performed_step_from
from broker.store import tables as t
from broker.store.outbox import SqlOutboxQueue
from support.audit import event_key, valid_message
from support.brokers import make_config
from support.hl7peer import NO_ANSWER, RisListener, scheduled_order, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.mpps_scp import MppsReceiver
from support.net import free_port
from support.recorder import settled


def _order(broker: Broker, n: int) -> None:
    send(broker.hl7.port, scheduled_order(f"{n:04d}", n))


def _perform(broker: Broker | Services, n: int, final: str = "COMPLETED") -> None:
    """RAD-6 then RAD-7 for order n, through the PPS Manager (DIMSE is tested elsewhere)."""
    create = as_dataset(n_create(f"SPS{n:04d}", f"ACC{n:04d}", f"RP{n:04d}", f"1.2.392.200036.9999.1.{n}"))
    uid, rules = f"1.2.3.{n}", broker.profile.mpps
    broker.pps_manager.rad6_modality_pps_in_progress(performed_step_from(create, uid, rules))
    update = as_dataset(n_set_final(final))
    broker.pps_manager.rad7_modality_pps_update(uid, lambda stored: merge(stored, update, rules))


def _statuses(messages: list[bytes]) -> dict[str, list[str]]:
    by_order: dict[str, list[str]] = {}
    for message in messages:
        by_order.setdefault(segment(message, "ORC")[2], []).append(segment(message, "ORC")[5])
    return by_order


PROCEDURES = 100


@pytest.mark.timeout(300)  # 400 deliveries after the outage, two waits of up to 120 s
def test_outage_of_ris_and_image_manager_every_message_once_in_order(database_url: str) -> None:
    """Issue 'Done when': 100 procedures complete while the RIS and the MPPS forwarding
    target are down; once they are back each gets every message exactly once, in order
    per order (RIS) and per MPPS (Image Manager)."""
    ris_port, scp_port = free_port(), free_port()
    target = {"name": "pacs-mpps", "ae_title": "IMAGEMGR", "host": "127.0.0.1", "port": scp_port}
    broker = Broker(make_config(ris_port, database_url=database_url, mpps_forward=[target]))
    broker.start()
    try:
        for n in range(1, PROCEDURES + 1):
            _order(broker, n)
            _perform(broker, n, "COMPLETED" if n % 2 else "DISCONTINUED")
        ris, scp = RisListener(ris_port).start(), MppsReceiver(scp_port).start()
        try:
            received, forwarded = ris.wait_for(2 * PROCEDURES, timeout=120), scp.wait_for(2 * PROCEDURES, timeout=120)
        finally:
            ris.stop()
            scp.stop()
    finally:
        broker.stop()
    assert len(received) == len(forwarded) == 2 * PROCEDURES
    assert _statuses(received) == {f"PO{n:04d}^RIS": ["IP", "CM" if n % 2 else "DC"] for n in range(1, PROCEDURES + 1)}
    per_mpps: dict[str, list[str]] = {}
    for operation, uid, _ in forwarded:
        per_mpps.setdefault(uid, []).append(operation)
    assert per_mpps == {f"1.2.3.{n}": ["create", "set"] for n in range(1, PROCEDURES + 1)}


def _rows(broker: Broker | Services) -> dict[str, list[tuple[str, str]]]:
    """(state, answer code) of each RIS message, by order, oldest first."""
    o = t.outbox.c
    stmt = select(o.ordering_key, o.state, o.answer_code).where(o.destination == "ris").order_by(o.id)
    with broker.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    by_order: dict[str, list[tuple[str, str]]] = {}
    for key, state, code in rows:
        by_order.setdefault(key, []).append((state, code))
    return by_order


def _of_order(n: int) -> Callable[[bytes], bool]:
    return lambda message: segment(message, "ORC")[2] == f"PO{n:04d}^RIS"


def _held(broker: Broker | Services) -> bool:
    """Nothing is due, however long one waits: what is not sent is held (by a dead
    letter), not backing off. (A lease of nothing changes nothing.)"""
    far = datetime.now() + timedelta(days=1)
    return SqlOutboxQueue(broker.engine).lease_due(far, far) == []


SENT = ("sent", "AA")


def test_ar_is_retried_so_the_ris_takes_ip_then_cm_once_each(broker: Broker, ris: RisListener) -> None:
    """#13 Done when, R8: AR ("may be resent") to an order's first status is not final:
    the IP goes again, then the CM; the RIS accepts each exactly once, in order."""
    ris.script("AR")
    _order(broker, 1)
    _perform(broker, 1)
    rows = settled(lambda: _rows(broker), lambda rows: rows == {"RIS|PO0001": [SENT, SENT]})
    assert rows == {"RIS|PO0001": [SENT, SENT]}
    assert [segment(m, "ORC")[5] for m in ris.received] == ["IP", "IP", "CM"]  # the AR'd IP, its resend, CM


def test_no_answer_is_retried_like_ar(database_url: str, ris: RisListener) -> None:
    """R8: a RIS that reads the status and never answers: the IP goes again after the
    timeout, then the CM."""
    ris.script(NO_ANSWER)
    config = make_config(
        ris.port, database_url=database_url, ris={"host": "127.0.0.1", "port": ris.port, "timeout_seconds": 0.5}
    )
    broker = Broker(config)
    broker.start()
    try:
        _order(broker, 1)
        _perform(broker, 1)
        rows = settled(lambda: _rows(broker), lambda rows: rows == {"RIS|PO0001": [SENT, SENT]})
    finally:
        broker.stop()
    assert rows == {"RIS|PO0001": [SENT, SENT]}
    assert [segment(m, "ORC")[5] for m in ris.received] == ["IP", "IP", "CM"]


def test_ae_holds_the_order_until_requeue_while_other_orders_flow(broker: Broker, ris: RisListener) -> None:
    """#13 Done when, R8: the RIS answers AE to order 1's IP: a dead letter with the
    RIS's answer kept, order 1's CM waits behind it (the RIS gets nothing more for
    order 1), order 2 goes through; after requeue the RIS gets IP, then CM."""
    ris.script("AE", when=_of_order(1))
    for n in (1, 2):
        _order(broker, n)
        _perform(broker, n)
    held = {"RIS|PO0001": [("dead", "AE"), ("pending", "")], "RIS|PO0002": [SENT, SENT]}
    assert settled(lambda: _rows(broker), lambda rows: rows == held) == held
    assert _held(broker)
    assert _statuses(ris.received) == {"PO0001^RIS": ["IP"], "PO0002^RIS": ["IP", "CM"]}
    [dead] = SqlOutboxQueue(broker.engine).listing("dead", 10)
    assert (dead.answer_code, dead.answer_text) == ("AE", "Refused by the RIS stand-in (AE)")
    assert dead.answer_error == "^^^207&Application internal error&HL70357"

    [requeued] = broker.services.dead_letters.requeue([dead.id], Requestor("test operator"))
    assert requeued.id == dead.id
    done = {"RIS|PO0001": [SENT, SENT], "RIS|PO0002": [SENT, SENT]}
    assert settled(lambda: _rows(broker), lambda rows: rows == done) == done
    assert _statuses(ris.received)["PO0001^RIS"] == ["IP", "IP", "CM"]


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "broker", "outbox", *args, "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _config_file(broker: Broker, tmp_path: Path) -> Path:
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump(broker.config.model_dump(mode="json")))
    return config


def test_dead_letter_listed_with_the_answer_and_requeued_by_operator(
    broker: Broker, ris: RisListener, tmp_path: Path
) -> None:
    ris.answer = "AE"
    _order(broker, 1)
    _perform(broker, 1)
    held = {"RIS|PO0001": [("dead", "AE"), ("pending", "")]}
    assert settled(lambda: _rows(broker), lambda rows: rows == held) == held
    config = _config_file(broker, tmp_path)
    listing = _cli(config, "list").stdout.splitlines()
    assert len(listing) == 2
    dead = listing[1].split()[0]
    assert "AE      Refused by the RIS stand-in (AE)  ERR ^^^207&Application internal error&HL70357" in listing[1]

    ris.answer = "AA"
    assert _cli(config, "requeue", dead).stdout.strip() == "requeued 1 of 1"
    resent = ris.wait_for(3)[1:]
    assert [segment(m, "ORC")[5] for m in resent] == ["IP", "CM"]
    assert _cli(config, "requeue", dead).returncode == 1  # no dead letter any more


def test_skip_drops_the_dead_letter_and_releases_its_order_audited(
    database_url: str, ris: RisListener, tmp_path: Path
) -> None:
    """`broker outbox skip`: the refused IP is dropped, the CM goes; the operator's
    action is an ATNA Security Alert (Use of Restricted Function) naming the message."""
    broker = Broker(make_config(ris.port, database_url=database_url, audit={"enabled": True}))
    broker.start()
    try:
        ris.script("AE")
        _order(broker, 1)
        _perform(broker, 1)
        held = {"RIS|PO0001": [("dead", "AE"), ("pending", "")]}
        assert settled(lambda: _rows(broker), lambda rows: rows == held) == held
        [dead] = SqlOutboxQueue(broker.engine).listing("dead", 10)
        skipped = _cli(_config_file(broker, tmp_path), "skip", str(dead.id))
        assert skipped.stdout.strip() == "skipped 1 of 1"
        done = {"RIS|PO0001": [("skipped", "AE"), SENT]}
        assert settled(lambda: _rows(broker), lambda rows: rows == done) == done
        alerts = [root for root in _audit_messages(broker) if event_key(root)[0] == "110113"]
    finally:
        broker.stop()
    assert [segment(m, "ORC")[5] for m in ris.received] == ["IP", "CM"]
    [alert] = alerts
    assert event_key(alert) == ("110113", "E", "110132")
    assert alert.find(".//ParticipantObjectName").text == "outbox skip"  # type: ignore[union-attr]
    detail = alert.find(".//ParticipantObjectDetail").get("value")  # type: ignore[union-attr]
    assert f"message {dead.id} to ris for RIS|PO0001, answered AE" in b64decode(detail).decode()


def _audit_messages(broker: Broker) -> list[etree._Element]:
    with broker.engine.connect() as conn:
        payloads = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.destination == "audit")).scalars()
        return [valid_message(payload[payload.index(b"<?xml") :]) for payload in payloads]


def test_the_hold_survives_a_restart(database_url: str, ris: RisListener) -> None:
    """R8: the dead letter and what waits behind it are in the database; a broker started
    afterwards keeps order 1 held while order 2 flows, and requeue then sends IP, CM."""
    config = make_config(ris.port, database_url=database_url)
    first = Broker(config)
    first.start()
    try:
        ris.script("AE", when=_of_order(1))
        _order(first, 1)
        _perform(first, 1)
        held = {"RIS|PO0001": [("dead", "AE"), ("pending", "")]}
        assert settled(lambda: _rows(first), lambda rows: rows == held) == held
    finally:
        first.stop()
    second = Broker(config)
    second.start()
    try:
        _order(second, 2)
        _perform(second, 2)
        flowing = {**held, "RIS|PO0002": [SENT, SENT]}
        assert settled(lambda: _rows(second), lambda rows: rows == flowing) == flowing
        assert _held(second)
        [dead] = SqlOutboxQueue(second.engine).listing("dead", 10)
        second.services.dead_letters.requeue([dead.id], Requestor("test operator"))
        done = {"RIS|PO0001": [SENT, SENT], "RIS|PO0002": [SENT, SENT]}
        assert settled(lambda: _rows(second), lambda rows: rows == done) == done
    finally:
        second.stop()
    assert _statuses(ris.received) == {"PO0001^RIS": ["IP", "IP", "CM"], "PO0002^RIS": ["IP", "CM"]}
