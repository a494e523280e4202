"""The RIS stand-in (tests/support/hl7peer.py) is as strict as a real RIS: scripted
answers per message, silence, and with `strict_header` an AE + ERR for a header that
lacks a field HL7 v2.3.1 / v2.5 requires."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from broker.hl7.sender import acknowledgement
from support.hl7peer import NO_ANSWER, RisListener, sample, send
from support.net import free_port

FULL = sample("rad-2-placer-order/orm_o01_nw.hl7")


def _without(message: bytes, field: int) -> bytes:
    header, rest = message.split(b"\r", 1)
    fields = header.split(b"|")
    fields[field - 1] = b""  # MSH-1 is the separator itself: field n is index n-1
    return b"|".join(fields) + b"\r" + rest


@pytest.fixture
def strict() -> Iterator[RisListener]:
    listener = RisListener(free_port(), strict_header=True).start()
    yield listener
    listener.stop()


@pytest.mark.parametrize("field", [3, 4, 5, 6, 7, 9, 10, 11, 12])
def test_strict_header_refuses_an_empty_required_msh_field(strict: RisListener, field: int) -> None:
    [reply] = send(strict.port, _without(FULL, field))
    answer = acknowledgement(reply)
    assert answer.code == "AE"
    assert answer.text == f"Required field missing: MSH-{field}"
    assert answer.error == f"MSH^1^{field}^101&Required field missing&HL70357"


def test_strict_header_accepts_a_full_header(strict: RisListener) -> None:
    assert acknowledgement(send(strict.port, FULL)[0]).code == "AA"


def test_scripted_answers_in_turn_then_the_default(ris: RisListener) -> None:
    ris.script("AR", "AE")
    replies = send(ris.port, FULL, FULL, FULL)
    assert [acknowledgement(r).code for r in replies] == ["AR", "AE", "AA"]
    assert ris.received == [FULL, FULL, FULL]


def test_no_answer_is_silence(ris: RisListener) -> None:
    ris.script(NO_ANSWER)
    with pytest.raises(socket.timeout):
        send(ris.port, FULL, timeout=0.5)
    assert ris.received == [FULL]
