"""The MLLP listener: an asyncio server on its own thread.

Connections stay open for as many messages as the sender wants (RIS interfaces keep
one connection for days); each message is answered before the next is read, which
keeps one sender's messages in order. Idle connections and oversize frames are closed.
The work itself (decode, store, ACK) runs on worker threads, so a slow database never
stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from broker.hl7.mllp import FrameTooLarge, read_frame, wrap

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

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("HL7 MLLP listening on %s:%s", self._address[0], self.port)

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, *self._address, limit=self._max_frame, reuse_address=True)

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
