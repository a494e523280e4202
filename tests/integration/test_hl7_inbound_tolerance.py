"""What senders really put on the wire (#13 defects 3 and 4): LF or CRLF between
segments, no final CR (python-hl7's `mllp_send`), trailing empty fields. The message
means the same; a resend that differs only there gets the original answer, and the
ACK is well formed whatever the terminators were.

python-hl7's `mllp_send` (PyPI `hl7`) runs as a second, real sender: it needs
`--file`, waits for the ACK and exits 0 whatever the answer, so the test reads the MSA
from what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from broker.app import Broker
from broker.hl7.mllp import wrap
from broker.store import tables as t
from support.hl7peer import ack_code, sample, segment, send

NW = "rad-2-placer-order/orm_o01_nw.hl7"
A04 = "rad-1-patient-registration/adt_a04.hl7"
MLLP_SEND = Path(sys.executable).with_name("mllp_send")


def _count(broker: Broker, table: object) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _mllp_send(port: int, message: bytes, workdir: Path) -> bytes:
    """One message through python-hl7's `mllp_send`; the reply's body as it printed it."""
    path = workdir / "message.mllp"
    path.write_bytes(wrap(message))
    done = subprocess.run(
        [str(MLLP_SEND), "--file", str(path), "--port", str(port), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().strip(b"\x0b\x1c\r\n")


def test_lf_separated_message_gets_well_formed_ack_13_defect_4(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample(A04).replace(b"\r", b"\n"))
    assert b"\n" not in reply
    assert segment(reply, "MSH")[12] == "2.3.1"
    assert ack_code(reply) == "AA"
    assert segment(reply, "MSA")[2] == "ADT0001"


def test_crlf_separated_order_is_applied_with_its_order_response(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample(NW).replace(b"\r", b"\r\n"))
    assert ack_code(reply) == "AA"
    assert segment(reply, "MSH")[9].startswith("ORR^O02")
    assert segment(reply, "ORC")[1] == "OK"
    assert _count(broker, t.orders) == 1


def test_mllp_send_then_cr_resend_get_same_answer_13_defect_3(broker: Broker, tmp_path: Path) -> None:
    """`mllp_send` strips the final CR; the RIS's resend (with it) is the same message."""
    first = _mllp_send(broker.hl7.port, sample(NW), tmp_path)
    [second] = send(broker.hl7.port, sample(NW))
    assert ack_code(first) == ack_code(second) == "AA"
    assert segment(second, "ORC")[1] == "OK"
    assert segment(first, "MSA") == segment(second, "MSA")
    assert (_count(broker, t.orders), _count(broker, t.inbound_messages)) == (1, 1)


def test_cr_then_mllp_send_resend_gets_same_answer_13_defect_3(broker: Broker, tmp_path: Path) -> None:
    [first] = send(broker.hl7.port, sample(NW))
    second = _mllp_send(broker.hl7.port, sample(NW), tmp_path)
    assert ack_code(first) == ack_code(second) == "AA"
    assert segment(second, "ORC")[1] == "OK"
    assert (_count(broker, t.orders), _count(broker, t.inbound_messages)) == (1, 1)


def test_resend_with_other_terminators_and_trailing_empty_fields_is_the_same_message(broker: Broker) -> None:
    original = sample(NW)
    variants = [
        original.replace(b"\r", b"\n"),
        original.replace(b"\r", b"\r\n"),
        original.rstrip(b"\r"),
        original.replace(b"|M\r", b"|M|||\r").replace(b"^DICOM\r", b"^DICOM^^\r"),
    ]
    replies = send(broker.hl7.port, original, *variants)
    assert [ack_code(r) for r in replies] == ["AA"] * 5
    assert {tuple(segment(r, "MSA")) for r in replies} == {tuple(segment(replies[0], "MSA"))}
    assert (_count(broker, t.orders), _count(broker, t.inbound_messages)) == (1, 1)


def test_resend_with_a_real_difference_is_still_AE_205(broker: Broker) -> None:
    first, second = send(broker.hl7.port, sample(NW), sample(NW).replace(b"|M\r", b"|F\r").replace(b"\r", b"\n"))
    assert (ack_code(first), ack_code(second)) == ("AA", "AE")
    assert "205&Duplicate key identifier" in segment(second, "ERR")[1]
