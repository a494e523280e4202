"""A do-nothing MLLP server: answers every message AA at once, storing nothing.

Driven by the same client as the broker, it shows what the client, the loopback
socket and MLLP framing cost on their own: the floor under the broker's ACK latency.
Run as `python -m bench.mllp_floor --port P`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from broker.hl7.mllp import END, START


def ack_for(message: bytes) -> bytes:
    """A minimal ACK quoting MSH-10; the MSH is split, nothing else is parsed."""
    msh = message.split(b"\r", 1)[0]
    separator = msh[3:4] or b"|"
    fields = msh.split(separator)
    control_id = fields[9] if len(fields) > 9 else b""
    return (
        b"MSH|^~\\&|FLOOR|BENCH|RIS|HOSPITAL|20261123000000||ACK^O01|A"
        + control_id[:19]
        + b"|P|2.3.1\rMSA|AA|"
        + control_id
        + b"\r"
    )


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.readuntil(END)
            start = data.rfind(START)
            writer.write(START + ack_for(data[start + 1 : -len(END)]) + END)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
