"""Syslog transports for the outbox's `audit` destination.

RFC 5425 (TLS, octet-counting framing "LEN SP MSG") is the reliable one: the outbox
keeps each message until the collector's connection took it, and an outage only defers
it. A connection the collector closed is noticed before writing (syslog collectors
never send), so a message is not written into a dead connection and lost. RFC 5426
(UDP) is best effort by nature: a datagram to a stopped collector is gone, though the
message stays in the local trail.
"""

from __future__ import annotations

import select
import socket
import ssl
from dataclasses import dataclass

from broker.config import AuditConfig
from broker.jobs.outbox_sender import DELIVERED, Outcome
from broker.tls import client_context


@dataclass(frozen=True)
class SyslogDestination:
    host: str
    port: int
    timeout: float


class UdpSyslogTransport:
    """RFC 5426: one message per datagram."""

    def __init__(self, destination: SyslogDestination) -> None:
        self._address = (destination.host, destination.port)

    def send(self, payload: bytes) -> Outcome:
        with socket.socket(_family(self._address[0]), socket.SOCK_DGRAM) as sock:
            sock.sendto(payload, self._address)
        return DELIVERED

    def close(self) -> None:
        pass


class TlsSyslogTransport:
    """RFC 5425: one TLS connection kept open, messages framed by octet counting."""

    def __init__(self, destination: SyslogDestination, context: ssl.SSLContext, server_name: str) -> None:
        self._destination = destination
        self._context = context
        self._server_name = server_name
        self._sock: ssl.SSLSocket | None = None

    def send(self, payload: bytes) -> Outcome:
        sock = self._connected()
        try:
            sock.sendall(str(len(payload)).encode("ascii") + b" " + payload)
        except OSError:
            self.close()
            raise
        return DELIVERED

    def _connected(self) -> ssl.SSLSocket:
        if self._sock is not None and not _closed_by_peer(self._sock):
            return self._sock
        self.close()
        d = self._destination
        raw = socket.create_connection((d.host, d.port), timeout=d.timeout)
        try:
            self._sock = self._context.wrap_socket(raw, server_hostname=self._server_name)
        except OSError:
            raw.close()
            raise
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class LocalOnlyTransport:
    """No collector configured: the outbox rows are the trail (kept as sent)."""

    def send(self, payload: bytes) -> Outcome:
        return DELIVERED

    def close(self) -> None:
        pass


def _closed_by_peer(sock: ssl.SSLSocket) -> bool:
    """Whether the collector ended the connection: it is readable, and reading finds
    the end (or an error) rather than data it never sends."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return not sock.recv(1)
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def syslog_transport(config: AuditConfig) -> UdpSyslogTransport | TlsSyslogTransport | LocalOnlyTransport:
    """The `audit` destination's way out, as configured."""
    if config.host is None:
        return LocalOnlyTransport()
    destination = SyslogDestination(config.host, config.port, config.timeout_seconds)
    if config.protocol == "udp":
        return UdpSyslogTransport(destination)
    return TlsSyslogTransport(destination, client_context(config.tls), config.tls.server_name or config.host)
