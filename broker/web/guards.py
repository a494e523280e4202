"""Two checks every HTTP response goes through, outside the routes so that no route
can forget them.

`HostAllowList` answers 421 to a request whose Host header names none of the names
this broker is reached by. A hostile web page can make a browser's requests reach
the broker's loopback port by DNS rebinding (its own name resolving to 127.0.0.1),
but the browser still sends that hostile name in Host: refusing it keeps such a page
from reading patient data through a user's browser.

`SecurityHeaders` adds the headers that keep a browser from running anything the
broker did not serve itself (CSP without inline script or style), from framing the
page (clickjacking), from guessing content types, and from leaking URLs (which carry
patient IDs in queries) in Referer or caches.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("0.0.0.0", "::", "")
_DEFAULT_PORTS = {"http": 80, "https": 443}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def allowed_hosts(bind_host: str, port: int, extra: Iterable[str]) -> frozenset[tuple[str, int | None]]:
    """(name, port) pairs to serve: the bind address and the loopback names on the web
    port, plus the configured `name` (any port) and `name:port` entries."""
    names = [*LOOPBACK_NAMES, *([bind_host] if bind_host not in _WILDCARDS else [])]
    pairs: set[tuple[str, int | None]] = {(name.lower(), port) for name in names}
    for entry in extra:
        pairs.add(split_host(entry, None) or (entry.lower(), None))
    return frozenset(pairs)


def split_host(value: str, default_port: int | None) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6]:port` as (name, port), lower case, no brackets; None when
    malformed. A value without a port has `default_port`."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    else:
        name, port_text = value, ""
    if not name or (port_text and not (port_text.isdigit() and len(port_text) <= 5)):
        return None
    return name, int(port_text) if port_text else default_port


class HostAllowList:
    def __init__(self, app: ASGIApp, hosts: frozenset[tuple[str, int | None]]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            refusal = PlainTextResponse("this broker does not answer to that Host name (web.allowed_hosts)", 421)
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        values = [value for key, value in scope["headers"] if key == b"host"]
        if len(values) != 1:
            return False
        found = split_host(values[0].decode("latin-1"), _DEFAULT_PORTS.get(scope.get("scheme", "http")))
        return found is not None and (found in self.hosts or (found[0], None) in self.hosts)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        secure = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                if not static:  # answers carry patient data: kept by no cache
                    headers["cache-control"] = "no-store"
                if secure:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)
