"""Free ports and waiting for a listener (pynetdicom's tests do the same)."""

from __future__ import annotations

import socket
import socketserver
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
