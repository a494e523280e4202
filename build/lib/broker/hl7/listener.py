"""The MLLP listener: an asyncio server on its own thread.

Connections stay open for as many messages as the sender wants (RIS interfaces keep
one connection for days); each message is answered before the next is read, which
keeps one sender's messages in order. Idle connections and oversize frames are closed.
With TLS, each connection is held unread until its handshake starts (no byte of the
ClientHello can slip into the plain stream) and a failed or overdue handshake is
reported as a security alert, which asyncio's own `ssl=` server would swallow.
The work itself (decode, store, ACK) runs on worker threads, so a slow database never
stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from broker.config import TlsConfig
from broker.hl7.mllp import FrameTooLarge, read_frame, wrap
from broker.security import TLS_HANDSHAKE, LoggedAlerts, SecurityAlerts
from broker.tls import failure_reason, optional_server_context

log = logging.getLogger(__name__)


class MllpListener:
    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[bytes], bytes],
        *,
        max_frame_bytes: int,
        idle_timeout: float,
        workers: int = 4,
        tls: TlsConfig | None = None,
        alerts: SecurityAlerts | None = None,
    ) -> None:
        self._address = (host, port)
        self._handler = handler
        self._max_frame = max_frame_bytes
        self._idle_timeout = idle_timeout
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mllp", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = port
        self._tls = optional_server_context(tls)
        self._handshake_timeout = tls.handshake_timeout_seconds if tls else None
        self._alerts = alerts or LoggedAlerts()
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("HL7 MLLP listening on %s:%s", self._address[0], self.port)

    async def _start(self) -> asyncio.Server:
        if self._tls is not None:
            return await self._loop.create_server(lambda: _Unread(self._secure), *self._address, reuse_address=True)
        return await asyncio.start_server(self._serve, *self._address, limit=self._max_frame, reuse_address=True)

    def _secure(self, transport: asyncio.Transport) -> None:
        task = self._loop.create_task(self._handshake(transport))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        assert self._tls is not None
        peer = transport.get_extra_info("peername")
        reader = asyncio.StreamReader(limit=self._max_frame, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        try:
            secure = await self._loop.start_tls(
                transport, protocol, self._tls, server_side=True, ssl_handshake_timeout=self._handshake_timeout
            )
        except OSError as exc:  # ssl.SSLError, TimeoutError, ConnectionError
            self._alerts.refused(TLS_HANDSHAKE, f"{peer[0]}:{peer[1]}", f"HL7: {failure_reason(exc)}")
            transport.close()
            return
        assert secure is not None
        protocol.connection_made(secure)  # start_tls leaves that to its caller
        await self._serve(reader, asyncio.StreamWriter(secure, protocol, reader, self._loop))

    def stop(self) -> None:
        """Stop accepting, close open connections, let running work finish."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(self._server), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._executor.shutdown(wait=True, cancel_futures=False)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pending):  # TLS connections still handshaking (or serving)
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self._writers.add(writer)
        try:
            while True:
                frame = await asyncio.wait_for(read_frame(reader), self._idle_timeout)
                if frame is None:
                    break
                ack = await self._loop.run_in_executor(self._executor, self._handler, frame)
                writer.write(wrap(ack))
                await writer.drain()
        except TimeoutError:
            log.info("closing idle HL7 connection from %s", peer)
        except FrameTooLarge:
            log.warning("closing HL7 connection from %s: frame over %d bytes", peer, self._max_frame)
        except (ConnectionError, OSError) as exc:
            log.info("HL7 connection from %s ended: %s", peer, exc)
        finally:
            self._writers.discard(writer)
            writer.close()


class _Unread(asyncio.Protocol):
    """A new connection, not read from until `start` has begun its TLS handshake."""

    def __init__(self, start: Callable[[asyncio.Transport], None]) -> None:
        self._start = start

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._start(transport)
