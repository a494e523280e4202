"""Status messages to the RIS through the durable outbox: held while the RIS is down,
then delivered exactly once and in order per order; a refusal goes to the dead letters
without blocking the messages behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import select

from broker.app import Broker
from broker.mapping.mpps import merge, performed_step_from
from broker.store import tables as t
from support.brokers import make_config
from support.hl7peer import RisListener, scheduled_order, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.mpps_scp import MppsReceiver
from support.net import free_port
from support.recorder import settled


def _order(broker: Broker, n: int) -> None:
    send(broker.hl7.port, scheduled_order(f"{n:04d}", n))


def _perform(broker: Broker, n: int, final: str = "COMPLETED") -> None:
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


def _states(broker: Broker) -> list[tuple[str, str]]:
    with broker.engine.connect() as conn:
        rows = conn.execute(select(t.outbox.c.state, t.outbox.c.last_error).order_by(t.outbox.c.id)).all()
    return [(state, error) for state, error in rows]


def test_refused_message_is_dead_lettered_and_does_not_block(broker: Broker, ris: RisListener) -> None:
    ris.answer = "AE"
    _order(broker, 1)
    _perform(broker, 1)
    ris.wait_for(2)
    states = settled(lambda: _states(broker), lambda rows: all(s == "dead" for s, _ in rows))
    assert [s for s, _ in states] == ["dead", "dead"]
    assert states[0][1].startswith("AE")
    assert len(ris.received) == 2


def test_dead_letter_listed_and_requeued_by_operator(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    ris.answer = "AR"
    _order(broker, 1)
    _perform(broker, 1)
    ris.wait_for(2)
    settled(lambda: _states(broker), lambda rows: all(s == "dead" for s, _ in rows))
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump(broker.config.model_dump(mode="json")))
    cli = [sys.executable, "-m", "broker", "outbox"]
    listing = subprocess.run([*cli, "list", "--config", str(config)], capture_output=True, text=True, timeout=60)
    dead = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert len(dead) == 2 and "AR:" in listing.stdout

    ris.answer = "AA"
    requeued = subprocess.run(
        [*cli, "requeue", *dead, "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert requeued.stdout.strip() == "requeued 2 of 2"
    resent = ris.wait_for(4)[2:]
    assert [segment(m, "ORC")[5] for m in resent] == ["IP", "CM"]
