"""The MLLP client: sends messages over one or several connections and times each ACK.

Each connection sends its next message only when the previous one is acknowledged,
as an HL7 sender must (MLLP has no pipelining); concurrency comes from several
connections. One asyncio loop drives all of them, so the client costs the same
whichever server it talks to.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from broker.hl7.mllp import END, START, wrap
from broker.hl7.sender import acknowledgement_code


@dataclass
class LoadResult:
    """Messages sent, wall time from first send to last ACK, each ACK's latency, and
    how many ACKs carried each MSA-1 code ("" for none)."""

    messages: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def not_accepted(self) -> int:
        return sum(n for code, n in self.codes.items() if code not in ("AA", "CA"))


async def _one_connection(port: int, messages: Sequence[bytes], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for message in messages:
            sent = time.perf_counter()
            writer.write(wrap(message))
            await writer.drain()
            reply = await reader.readuntil(END)
            result.latencies.append(time.perf_counter() - sent)
            body = reply[reply.rfind(START) + 1 : -len(END)]
            result.codes[acknowledgement_code(body)[0]] += 1
            result.messages += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _send_all(port: int, messages: Sequence[bytes], connections: int) -> LoadResult:
    result = LoadResult()
    shares = [messages[i::connections] for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(_one_connection(port, share, result) for share in shares if share))
    result.seconds = time.perf_counter() - started
    return result


def send(port: int, messages: Sequence[bytes], connections: int = 1) -> LoadResult:
    """Send `messages` spread round-robin over `connections` kept-open connections."""
    return asyncio.run(_send_all(port, messages, connections))
