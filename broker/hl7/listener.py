"""The MLLP listener: an accepting thread, and a thread per connection.

Connections stay open for as many messages as the sender wants (RIS interfaces keep
one connection for days); each message is answered before the next is read, which
keeps one sender's messages in order. A connection idle longer than the idle timeout
(no complete frame within it) and an oversize frame are closed.

Each connection's thread reads a frame, has it handled (decode, store, ACK) and writes
the ACK itself: no hand-over per message between an event loop and a worker pool,
whose two cross-thread wake-ups cost ~0.25 ms a message on a 2-core machine (issue
#17: the event loop design ACKed 835 A08/s on one connection where this one ACKs 1,213,
same intake). An interface engine holds one to a few connections, so a thread each is
cheap; `max_connections` caps them against a flood (one over is closed at once). A
blocked thread waits in the kernel: idle connections cost nothing.

A sender streaming on one connection (a backlog replayed, a feed at full speed) sends
its next message a fraction of a millisecond after its ACK. A thread that sleeps in
the kernel meanwhile is woken on a cold core with cold caches, and everything it then
runs costs more: measured on the 2-core machine, 1.0-1.4 ms of CPU an order live
against 0.65 ms for the same intake called in a loop (issue #17). So after each answer
a connection that is the only one sending watches its socket for `busy_poll` seconds
(default 1 ms) before it sleeps: one connection then ACKed 1,162-1,182 ORM^O01/s where
it ACKed 969-989, and 2,426-2,689 ADT^A08/s where it ACKed 1,662-1,920 (make bench's
ingest part, runs alternating). While other connections of the process are sending it
does not: their threads need the cores (four connections lost up to a quarter of their
rate when each watched). The cost is bounded: at most `busy_poll` of CPU per message
received, nothing once the sender pauses.

With TLS, the handshake completes (within its timeout) before a byte is read, and a
failed or overdue handshake is reported as a security alert.

With `hl7.processes` over 1 the accepted connections are served elsewhere (`HandOff`,
hl7/processes.py): this listener only accepts and counts them, and a listener in each
intake process, never started, serves the connections handed to it (`admit`).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Protocol

from broker.config import TlsConfig
from broker.hl7.mllp import FrameReader, FrameTooLarge, wrap
from broker.security import TLS_HANDSHAKE, LoggedAlerts, SecurityAlerts
from broker.tls import handshake, optional_server_context

log = logging.getLogger(__name__)

#: Another connection that received nothing for this long is not sending now.
QUIET_SECONDS = 0.1


class HandOff(Protocol):
    """Where accepted connections are served when not in this process."""

    def take(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Serve `sock` (closed here, whatever happens to it there)."""

    def open_connections(self) -> int:
        """Connections being served there now."""

    def stop(self) -> None:
        """Close them, letting running work finish."""


class MllpListener:
    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[bytes], bytes],
        *,
        max_frame_bytes: int,
        idle_timeout: float,
        max_connections: int = 64,
        tls: TlsConfig | None = None,
        alerts: SecurityAlerts | None = None,
        elsewhere: HandOff | None = None,
        closed: Callable[[], None] = lambda: None,
        busy_poll: float = 0.0,
    ) -> None:
        """`elsewhere`: who serves the accepted connections (else threads here);
        `closed`: told each time a connection served here has ended; `busy_poll`: how
        long (seconds) a lone sending connection watches for its next message before
        sleeping (see the module's docstring)."""
        self._busy_poll = busy_poll
        self._elsewhere = elsewhere
        self._closed = closed
        self._address = (host, port)
        self._handler = handler
        self._max_frame = max_frame_bytes
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._tls = optional_server_context(tls)
        self._handshake_timeout = tls.handshake_timeout_seconds if tls else 0.0
        self._alerts = alerts or LoggedAlerts()
        self._server: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accepting = threading.Thread(target=self._accept_loop, name="mllp", daemon=True)
        #: Each open connection's socket (its TLS link once secured), with its thread.
        self._connections: dict[int, tuple[socket.socket, threading.Thread]] = {}
        #: When each connection served here last received a frame (monotonic clock).
        self._received: dict[int, float] = {}
        self._guard = threading.Lock()
        self._stopping = False
        self.port = port

    def start(self) -> None:
        family = socket.getaddrinfo(*self._address, type=socket.SOCK_STREAM)[0][0]
        self._server = socket.create_server(self._address, family=family, backlog=128)
        self.port = self._server.getsockname()[1]
        self._accepting.start()
        log.info("HL7 MLLP listening on %s:%s", self._address[0], self.port)

    def stop(self) -> None:
        """Stop accepting, close open connections, let running work finish."""
        with self._guard:
            if self._stopping:
                return
            self._stopping = True
        self._wake_w.send(b"x")
        if self._accepting.is_alive():
            self._accepting.join(timeout=5)
        with self._guard:
            connections = list(self._connections.values())
        for link, _ in connections:
            _shut(link)  # a thread blocked reading wakes; one handling a message answers first
        for _, thread in connections:
            thread.join(timeout=10)
        if self._elsewhere is not None:
            self._elsewhere.stop()
        for end in (self._wake_r, self._wake_w):
            end.close()
        if self._server is not None:
            self._server.close()

    def _accept_loop(self) -> None:
        """Accept until `stop`; blocked in one select with the wake-up pipe, never polling."""
        assert self._server is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    sock, peer = self._server.accept()
                except OSError as exc:  # e.g. the peer reset before accept: the listener goes on
                    log.info("HL7 connection not accepted: %s", exc)
                    continue
                self.admit(sock, peer)

    def admit(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Serve an accepted connection (here or elsewhere), or close it at once when
        stopping or `max_connections` are open."""
        with self._guard:
            open_now = len(self._connections) + (self._elsewhere.open_connections() if self._elsewhere else 0)
            if self._stopping or open_now >= self._max_connections:
                log.warning("closing HL7 connection from %s: %d connections open", peer, open_now)
                sock.close()
                self._closed()
                return
            if self._elsewhere is not None:
                self._elsewhere.take(sock, peer)
                return
            thread = threading.Thread(target=self._serve, args=(sock, peer), name=f"hl7 {peer[0]}:{peer[1]}")
            thread.daemon = True
            self._connections[id(thread)] = (sock, thread)
        thread.start()

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        key, link = id(threading.current_thread()), sock
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the ACK goes out whole, at once
            if self._tls is not None:
                with self._guard:  # `stop` must wake the TLS link, which now holds the connection
                    link = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                    self._connections[key] = (link, threading.current_thread())
                if not self._secured(link, peer):
                    return
            self._exchange(link, peer)
        except TimeoutError:
            log.info("closing idle HL7 connection from %s", peer)
        except FrameTooLarge:
            log.warning("closing HL7 connection from %s: frame over %d bytes", peer, self._max_frame)
        except OSError as exc:  # ConnectionError, ssl.SSLError after the handshake
            log.info("HL7 connection from %s ended: %s", peer, exc)
        finally:
            with self._guard:
                self._connections.pop(key, None)
                self._received.pop(key, None)
            _shut(link)
            link.close()
            self._closed()

    def _secured(self, link: ssl.SSLSocket, peer: tuple[str, int]) -> bool:
        """Whether the TLS handshake completed in time; if not, an alert is raised (and
        the connection closed by the caller, FIN first, as any other)."""
        failure = handshake(link, self._handshake_timeout)
        if failure is not None:
            self._alerts.refused(TLS_HANDSHAKE, f"{peer[0]}:{peer[1]}", f"HL7: {failure}")
        return failure is None

    def _exchange(self, link: socket.socket, peer: tuple[str, int]) -> None:
        """Frame in, ACK out, until the peer closes; each frame must be complete within
        the idle timeout of the previous answer (TimeoutError otherwise)."""
        key, deadline = id(threading.current_thread()), [0.0]

        def recv(size: int) -> bytes:
            if self._busy_poll and self._alone(key):
                data = _polled(link, size, self._busy_poll)
                if data is not None:
                    return data
            link.settimeout(max(deadline[0] - time.monotonic(), 0.001))
            return link.recv(size)

        frames = FrameReader(recv, self._max_frame)
        while True:
            deadline[0] = time.monotonic() + self._idle_timeout
            frame = frames.next()
            if frame is None:
                return
            self._received[key] = time.monotonic()
            answer = wrap(self._handler(frame))
            link.settimeout(self._idle_timeout)  # a peer that stops reading is closed too
            link.sendall(answer)

    def _alone(self, key: int) -> bool:
        """Whether no other connection served here received a frame lately."""
        now = time.monotonic()
        return all(now - at > QUIET_SECONDS for other, at in list(self._received.items()) if other != key)


def _polled(link: socket.socket, size: int, seconds: float) -> bytes | None:
    """What `link` receives within `seconds`, watched without sleeping (b"": the peer
    closed); None if nothing came. Leaves `link` non-blocking: its reader sets the
    timeout it wants. Over TLS a record not yet whole reads as nothing yet, and one that
    needs a write first (SSLWantWriteError) is left to the blocking read, which does it."""
    until = time.perf_counter() + seconds
    link.setblocking(False)
    while True:
        try:
            return link.recv(size)
        except ssl.SSLWantWriteError:
            return None
        except (BlockingIOError, ssl.SSLWantReadError):
            if time.perf_counter() >= until:
                return None


def _shut(sock: socket.socket) -> None:
    """Both directions closed: a thread blocked in recv on `sock` returns at once."""
    with contextlib.suppress(OSError):  # already closed, or reset by the peer
        sock.shutdown(socket.SHUT_RDWR)
