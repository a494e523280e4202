"""The web application and its server: uvicorn on a thread of its own, started and
stopped by `Broker` like the MLLP and DICOM listeners.

The socket is bound here, before the thread starts, so a port in use fails `start()`
at once and port 0 (tests) is known as soon as `start()` returns; the application is
made after binding, because the Host allow-list names the port actually bound.

Everything a browser loads comes from the broker itself: the page's style sheet and
Swagger UI's assets (from the `fastapi-offline` package) under /static, so the page
and /docs work offline and no third-party script runs on the broker's origin.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from pathlib import Path

import fastapi_offline
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.config import WebConfig, is_loopback
from broker.store import reads
from broker.tls import optional_server_context
from broker.web import actions, api, browse, dicomweb, lab, lab_page, orders, page
from broker.web.auth import Authorized, Tokens
from broker.web.context import WebContext
from broker.web.guards import HostAllowList, SecurityHeaders, allowed_hosts
from broker.web.limits import BodyLimit

log = logging.getLogger(__name__)

#: Swagger UI's bundle and style sheet, as shipped in the `fastapi-offline` wheel.
SWAGGER_UI_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def create_app(config: WebConfig, ctx: WebContext, port: int) -> FastAPI:
    app = FastAPI(
        title="swf broker",
        summary="IHE Scheduled Workflow broker: orders, worklist, MPPS, inbound log and outbox",
        version="0.1.0",
        docs_url=None,  # served below, from local assets and without inline script
        redoc_url=None,
    )
    app.state.context = ctx
    app.state.tokens = Tokens(config.tokens)
    app.state.form_key = secrets.token_bytes(32)  # the page forms' tokens (broker.web.forms)
    app.state.language = config.language  # the page's (broker.web.i18n)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(HostAllowList, hosts=allowed_hosts(config.host, port, config.allowed_hosts))
    app.add_middleware(SecurityHeaders)  # outermost: refusals carry the headers too
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI_ASSETS), name="swagger-ui")
    app.mount("/static", StaticFiles(packages=[("broker.web", "static")]), name="static")
    app.include_router(api.router)
    app.include_router(page.router)
    app.include_router(dicomweb.router)
    app.include_router(lab.router)
    app.include_router(orders.router)
    app.include_router(orders.pages)
    app.include_router(actions.router)
    app.include_router(browse.router)
    app.include_router(lab_page.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], responses={503: {"description": "database unreachable or pulled away"}})
    def ready() -> JSONResponse:
        """Readiness: the database file is the one opened at start and writable, and the
        database answers, so the broker can take work."""
        problem = ctx.store.problem()
        if problem is not None:
            return JSONResponse({"status": problem}, status_code=503)
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
        self._config = config
        self._ctx = ctx
        self._ssl = optional_server_context(config.tls)  # a bad certificate fails here, before any bind
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    def start(self) -> None:
        host = self._config.host
        sock = listening_socket(host, self._config.port)
        self.port = sock.getsockname()[1]
        self._server = server = uvicorn.Server(self._uvicorn_config())
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.01)
        log.info("web API and page on %s://%s:%s/", "https" if self._ssl else "http", host, self.port)
        if self._ssl is None and not is_loopback(host):
            log.warning("web on %s without web.tls: tokens and patient data cross the network in clear", host)

    def _uvicorn_config(self) -> uvicorn.Config:
        context = self._ssl
        return uvicorn.Config(
            create_app(self._config, self._ctx, self.port),
            log_config=None,  # the broker's logging setup (text or JSON) applies
            access_log=False,  # request lines carry query values (patient IDs)
            lifespan="off",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,  # stop() never waits long on a slow client
            limit_concurrency=100,
            # the BCP 195 context of broker.tls, as on the MLLP and DICOM listeners
            ssl_context_factory=(lambda _config, _default: context) if context else None,
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def listening_socket(host: str, port: int) -> socket.socket:
    """The listening socket, made with proto IPPROTO_TCP (`socket.create_server` leaves it 0):
    its connections inherit that, and asyncio sets TCP_NODELAY only on sockets that
    say so. Without it a kept-alive HTTP response's body waits behind its headers for
    the client's delayed ACK (Nagle): ~40 ms on every request but the first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock
