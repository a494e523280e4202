"""The web application and its server: uvicorn on a thread of its own, started and
stopped by `Broker` like the MLLP and DICOM listeners.

The socket is bound here, before the thread starts, so a port in use fails `start()`
at once and port 0 (tests) is known as soon as `start()` returns.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.config import WebConfig
from broker.store import reads
from broker.web import api, dicomweb, lab, page
from broker.web.auth import Authorized, Tokens
from broker.web.context import WebContext
from broker.web.limits import BodyLimit

log = logging.getLogger(__name__)


def create_app(config: WebConfig, ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="swf broker",
        summary="IHE Scheduled Workflow broker: orders, worklist, MPPS, inbound log and outbox",
        version="0.1.0",
    )
    app.state.context = ctx
    app.state.tokens = Tokens(config.tokens)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.include_router(api.router)
    app.include_router(page.router)
    app.include_router(dicomweb.router)
    app.include_router(lab.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], responses={503: {"description": "database unreachable"}})
    def ready() -> JSONResponse:
        """Readiness: the database answers, so the broker can take work."""
        if reads.reachable(ctx.engine):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    @app.get("/metrics", tags=["health"], dependencies=[Authorized], response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus text format; the outbox figures are read from the database now."""
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class WebServer:
    def __init__(self, config: WebConfig, ctx: WebContext) -> None:
        self._address = (config.host, config.port)
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, ctx),
                log_config=None,  # the broker's logging setup (text or JSON) applies
                access_log=False,  # request lines carry query values (patient IDs)
                lifespan="off",
                timeout_keep_alive=5,
                timeout_graceful_shutdown=5,  # stop() never waits long on a slow client
                limit_concurrency=100,
            )
        )
        self._thread: threading.Thread | None = None
        self.port = config.port

    def start(self) -> None:
        sock = socket.create_server(self._address, family=_family(self._address[0]), reuse_port=False)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.01)
        log.info("web API and page on http://%s:%s/", self._address[0], self.port)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
