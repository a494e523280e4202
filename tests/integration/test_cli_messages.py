"""`broker messages list` and `broker messages replay`: a refused message is kept raw
and, once its cause is fixed, applied by replaying it — never twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import text

from broker.app import Broker
from broker.config import BrokerConfig
from support.cli import run_cli
from support.hl7peer import ack_code, sample, send


def _cli(config: BrokerConfig, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, config=config, workdir=tmp_path)


def test_refused_update_replayed_after_registration(broker: Broker, config: BrokerConfig, tmp_path: Path) -> None:
    [refused] = send(broker.hl7.port, sample("rad-12-patient-update/adt_a08.hl7"))
    assert ack_code(refused) == "AE"

    listing = _cli(config, tmp_path, "messages", "list", "--refused")
    assert listing.returncode == 0, listing.stderr
    [line] = [row for row in listing.stdout.splitlines() if "ADT0002" in row]
    message_id = line.split()[0]
    assert line.rstrip().endswith("AE 204 PID-3")

    still_unknown = _cli(config, tmp_path, "messages", "replay", message_id)
    assert (still_unknown.returncode, still_unknown.stdout.split()[1]) == (1, "AE")

    send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"))
    replayed = _cli(config, tmp_path, "messages", "replay", message_id)
    assert (replayed.returncode, replayed.stdout.strip()) == (0, f"{message_id}: AA")

    again = _cli(config, tmp_path, "messages", "replay", message_id)
    assert again.returncode == 1
    assert "not replayed" in again.stdout


def test_listing_shows_a_senders_escape_sequences_never_sends_them(
    broker: Broker, config: BrokerConfig, tmp_path: Path
) -> None:
    """A refused message's sender and control ID come from the wire: an ESC or BEL in
    them is printed as a visible escape, so `messages list` cannot drive the terminal."""
    hostile = sample("rad-12-patient-update/adt_a08.hl7").replace(b"ADT0002", b"X\x1b]0;pwn\x07")
    [answer] = send(broker.hl7.port, hostile)
    assert ack_code(answer) in ("AE", "AR")

    listing = _cli(config, tmp_path, "messages", "list", "--refused")
    assert listing.returncode == 0, listing.stderr
    assert "\x1b" not in listing.stdout and "\x07" not in listing.stdout
    assert "X␛]0;pwn␇" in listing.stdout


def test_a_refused_change_linked_to_its_order_is_replayed_once_the_order_exists(
    broker: Broker, config: BrokerConfig, tmp_path: Path
) -> None:
    """An XO for an order the broker does not hold yet is refused and kept, linked to
    the order it names; replayed after the NW, it is applied and stays linked once."""
    [refused] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_xo.hl7"))
    assert ack_code(refused) == "AE"
    listing = _cli(config, tmp_path, "messages", "list", "--refused")
    [line] = [row for row in listing.stdout.splitlines() if "ORM0004" in row]

    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    replayed = _cli(config, tmp_path, "messages", "replay", line.split()[0])
    assert (replayed.returncode, replayed.stdout.split()[1]) == (0, "AA"), replayed.stdout + replayed.stderr
    with broker.engine.connect() as conn:
        links = conn.execute(text("SELECT placer_order_number FROM inbound_message_orders")).scalars().all()
    assert sorted(links) == ["PO1001", "PO1001"]  # the NW and the XO, each once
