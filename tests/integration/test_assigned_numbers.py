"""RAD-3: the RIS's NA answer to the broker's SN names its number for the order
(hl7/assigned.py). What is read from an answer, and that an answer the store cannot
take never costs the delivery (the RIS would take a resent SN twice)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from broker.domain.errors import InvalidInput
from broker.hl7.assigned import assigned_number
from broker.hl7.sender import Destination, MllpTransport
from broker.jobs.outbox_sender import Backoff, OutboxSender
from broker.mapping.profile import load_profile
from broker.store import tables as t
from broker.store.outbox import SqlOutboxQueue
from support.hl7peer import RisListener, sample
from support.net import free_port

IHE = load_profile("ihe-swf")
MSH = "MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261204120000||ORR^O02^ORR_O02|R1|P|2.3.1\r"
NOW = datetime(2026, 12, 4, 12, 0)


def test_the_na_answer_names_the_filler_number_and_the_placers() -> None:
    reply = f"{MSH}MSA|AA|C1\rORC|NA|R77^RIS|A00000001\r".encode("ascii")
    assert assigned_number(reply, IHE) == ("A00000001", "R77", "RIS")


def test_the_answer_is_read_by_the_profiles_order_fields() -> None:
    """Where the profile reads a placer's order number (ORC-2, else OBR-2), it reads the
    number of an NA answer too: the placer's later messages are read the same way."""
    reply = f"{MSH}MSA|AA|C1\rORC|NA||A00000003\rOBR|1|R79^RIS|A00000003\r".encode("ascii")
    assert assigned_number(reply, IHE) == ("A00000003", "R79", "RIS")


@pytest.mark.parametrize(
    "rest",
    [
        "MSA|AA|C1\r",  # a general ACK
        "MSA|AA|C1\rORC|OK|R77^RIS|A00000001\r",  # another order control
        "MSA|AA|C1\rORC|NA||A00000001\r",  # no number given
        "MSA|AA|C1\rORC|NA|R77^RIS\r",  # not said which order
    ],
)
def test_an_answer_without_a_number_for_an_order_names_none(rest: str) -> None:
    assert assigned_number(f"{MSH}{rest}".encode("ascii"), IHE) is None


@pytest.mark.parametrize(("number", "location"), [("R" * 65, "ORC-2.1"), ("R1^R\\X0D\\IS", "ORC-2.2")])
def test_a_number_the_broker_could_not_send_back_is_refused(number: str, location: str) -> None:
    """Longer than a placer order number (LO, 64), or a control character escaped in:
    refused as it would be in an order, not kept to go out in ORC-2."""
    reply = f"{MSH}MSA|AA|C1\rORC|NA|{number}|A00000001\r".encode("ascii")
    with pytest.raises(InvalidInput) as refused:
        assigned_number(reply, IHE)
    assert refused.value.location == location


def test_an_unreadable_answer_names_none() -> None:
    assert assigned_number(b"\x0bnot HL7 at all\x1c\r", IHE) is None


def test_a_japanese_answer_is_read_in_its_character_set() -> None:
    """ISO-2022-JP: the JIS X 0208 bytes of a name may be `|` or `^`; the answer is
    decoded before its fields are split."""
    jahis = load_profile("jahis")
    msh = MSH.replace("2.3.1", "2.5|||||~ISO IR87||ISO 2022-1994")
    text = f"{msh}MSA|AA|C1\rORC|NA|R78^RIS|A00000002|||||||||山田^太郎\r"
    assert assigned_number(text.encode("iso2022_jp"), jahis) == ("A00000002", "R78", "RIS")


def test_an_answer_not_taken_still_delivers_the_message(engine: Engine) -> None:
    """The number could not be kept (here: the reader fails): the SN is marked sent all
    the same, and sent once."""
    ris = RisListener(free_port()).start()
    ris.numbering = "R"
    with engine.begin() as conn:
        conn.execute(t.outbox.insert().values(
            destination="ris", ordering_key="BROKER|A1", payload=sample("rad-3-filler-order-status/orm_o01_sn.hl7"),
            state="pending", attempts=0, created_at=NOW, next_attempt_at=NOW, last_error="",
        ))  # fmt: skip
    taken: list[bytes] = []

    def failing(reply: bytes) -> None:
        taken.append(reply)
        raise RuntimeError("store down")

    transport = MllpTransport(Destination("127.0.0.1", ris.port, timeout=5))
    sender = OutboxSender(
        SqlOutboxQueue(engine), {"ris": transport}, Backoff(1, 4), lambda: NOW, replies={"ris": failing}
    )
    try:
        assert sender.drain_destination("ris") == 1
    finally:
        sender.close()
        ris.stop()
    assert len(ris.wait_for(1)) == 1 and b"ORC|NA|R1^RIS|FO1001" in taken[0]
    with engine.connect() as conn:
        assert conn.execute(t.outbox.select()).one().state == "sent"
