"""MLLP framing (broker/hl7/mllp.py): <VT> message <FS><CR>, bytes only (HL7 v2 Appendix C)."""

from __future__ import annotations

import io

import pytest

from broker.hl7.mllp import END, START, FrameReader, FrameTooLarge, wrap

MESSAGE = b"MSH|^~\\&|RIS|H|BROKER|R|20261123||ADT^A04|C1|P|2.5\rPID|1||P1\r"


def _frames(data: bytes, count: int, limit: int = 2**16, chunk: int = 65536) -> list[bytes | None]:
    stream = io.BytesIO(data)
    reader = FrameReader(lambda size: stream.read(min(size, chunk)), limit)
    return [reader.next() for _ in range(count)]


def test_wrap_adds_vt_and_fs_cr_mllp() -> None:
    assert START == b"\x0b" and END == b"\x1c\r"
    assert wrap(MESSAGE) == b"\x0b" + MESSAGE + b"\x1c\r"


def test_read_frame_returns_the_payload_mllp() -> None:
    assert _frames(wrap(MESSAGE), 1) == [MESSAGE]


def test_read_frame_reads_back_to_back_frames_then_none_at_eof_mllp() -> None:
    assert _frames(wrap(b"ONE") + wrap(b"TWO"), 3) == [b"ONE", b"TWO", None]


def test_bytes_before_vt_are_dropped_mllp() -> None:
    assert _frames(b"\r\nnoise" + wrap(MESSAGE), 1) == [MESSAGE]


def test_incomplete_frame_at_eof_is_none_mllp() -> None:
    assert _frames(b"\x0b" + MESSAGE, 1) == [None]


def test_iso_2022_jp_payload_passes_untouched_mllp() -> None:
    payload = "PID|1||P1||山田^太郎".encode("iso2022_jp")
    assert b"\x1b$B" in payload
    assert _frames(wrap(payload), 1) == [payload]


@pytest.mark.parametrize("chunk", [1, 2, 7, 65536])
def test_a_frame_split_anywhere_reads_whole_even_across_its_end_mllp(chunk: int) -> None:
    """TCP may cut a frame anywhere, <FS><CR> included."""
    assert _frames(wrap(b"ONE") + wrap(MESSAGE), 3, chunk=chunk) == [b"ONE", MESSAGE, None]


def test_frame_over_the_limit_raises_frame_too_large_mllp() -> None:
    with pytest.raises(FrameTooLarge):
        _frames(wrap(b"X" * 200), 1, limit=64)
