"""Free ports and waiting for a listener (pynetdicom's tests do the same)."""

from __future__ import annotations

import random
import socket
import socketserver
import time
from pathlib import Path

#: Ports handed out in this run: each once, so two listeners never race for one.
_GIVEN: set[int] = set()


def _below_ephemeral() -> range:
    """Ports under the kernel's ephemeral range: a port bound there and released can
    be taken by no outgoing connection (a PostgreSQL client, a RIS sender) before the
    broker binds it (seen once: EADDRINUSE on a port the kernel had just handed out)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10000, max(low, 10001))


def free_port() -> int:
    ports = _below_ephemeral()
    for _ in range(1000):
        port = random.choice(ports)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use by something else
                continue
        _GIVEN.add(port)
        return port
    raise OSError("no free port below the ephemeral range")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def stop_serving(server: socketserver.BaseServer) -> None:
    """`server.shutdown()` without waiting out `serve_forever`'s half-second poll: a
    listening socket shut down reads as ready at once (Linux), so the loop wakes, accepts
    nothing and sees the stop request. Every test's RIS listener stops this way."""
    listening = getattr(server, "socket", None)
    if listening is not None:
        listening.shutdown(socket.SHUT_RDWR)
    server.shutdown()
