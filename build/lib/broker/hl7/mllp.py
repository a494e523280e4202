"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol): <VT> message <FS><CR>.

Bytes only: this layer knows nothing of encodings, so ISO-2022-JP content passes
through untouched.
"""

from __future__ import annotations

import asyncio
import socket

START = b"\x0b"
END = b"\x1c\r"


class FrameTooLarge(Exception):
    """A frame exceeded the configured maximum; the connection cannot be trusted."""


def wrap(payload: bytes) -> bytes:
    return START + payload + END


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next message, or None at end of stream. Bytes before <VT> are dropped."""
    try:
        data = await reader.readuntil(END)
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise FrameTooLarge(str(exc)) from None
    start = data.rfind(START)
    return data[start + 1 : -len(END)] if start >= 0 else data[: -len(END)]


def exchange(sock: socket.socket, payload: bytes, max_bytes: int = 1 << 20) -> bytes:
    """Send one framed message on a blocking socket and return the framed reply's body."""
    sock.sendall(wrap(payload))
    buffer = b""
    while END not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("peer closed the connection before answering")
        buffer += chunk
        if len(buffer) > max_bytes:
            raise FrameTooLarge("reply too large")
    body = buffer[: buffer.index(END)]
    start = body.rfind(START)
    return body[start + 1 :] if start >= 0 else body
