"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol): <VT> message <FS><CR>.

Bytes only: this layer knows nothing of encodings, so ISO-2022-JP content passes
through untouched.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

START = b"\x0b"
END = b"\x1c\r"


class FrameTooLarge(Exception):
    """A frame exceeded the configured maximum; the connection cannot be trusted."""


def wrap(payload: bytes) -> bytes:
    return START + payload + END


class FrameReader:
    """The frames of a byte stream read through `recv` (a socket's): each message, then
    None at end of stream. Bytes before <VT> are dropped; bytes after a frame wait for
    the next call. A frame whose end is not within `max_bytes` raises FrameTooLarge."""

    def __init__(self, recv: Callable[[int], bytes], max_bytes: int) -> None:
        self._recv = recv
        self._max = max_bytes
        self._buffer = bytearray()

    def next(self) -> bytes | None:
        searched = 0
        while (end := self._buffer.find(END, searched)) < 0:
            if len(self._buffer) > self._max:
                raise FrameTooLarge(f"no frame end within {self._max} bytes")
            searched = max(len(self._buffer) - len(END) + 1, 0)
            chunk = self._recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        if end > self._max:
            raise FrameTooLarge(f"frame of {end} bytes, over {self._max}")
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(END)]
        return data[data.rfind(START) + 1 :]


def exchange(sock: socket.socket, payload: bytes, max_bytes: int = 1 << 20) -> bytes:
    """Send one framed message on a blocking socket and return the framed reply's body."""
    sock.sendall(wrap(payload))
    reply = FrameReader(sock.recv, max_bytes).next()
    if reply is None:
        raise ConnectionError("peer closed the connection before answering")
    return reply
