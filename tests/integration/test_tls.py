"""TLS on the MLLP and DICOM listeners (RELIABILITY.md S1; PS3.15 B.12, BCP 195): Python
`ssl` clients probe what is accepted — TLS 1.3 and 1.2 AEAD with a client certificate the
broker's CA signed — and what is refused, each refusal reported once as a security
alert: TLS 1.1, TLS 1.2 CBC-SHA1, no client certificate, one from another CA, and plain
TCP, which is closed within 5 s while the listener keeps serving others."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pynetdicom import evt

from broker.config import DicomConfig, TlsConfig
from broker.dicom.ae import DicomListener
from broker.hl7.listener import MllpListener
from broker.security import TLS_HANDSHAKE
from support.certs import Pair, Pki, make_pki
from support.recorder import AlertRecorder

ACK = b"MSH|^~\\&|BROKER||||20261123000000||ACK|1|P|2.5.1\rMSA|AA|1\r"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def listener_tls(pki: Pki, handshake_timeout: float = 1) -> TlsConfig:
    return TlsConfig(
        cert=pki.server.cert,
        key=pki.server.key,
        ca=pki.ca,
        require_client_cert=True,
        handshake_timeout_seconds=handshake_timeout,
    )


@dataclass
class Listener:
    port: int
    alerts: AlertRecorder


def _mllp(tls: TlsConfig, alerts: AlertRecorder) -> tuple[int, Callable[[], None]]:
    listener = MllpListener(
        "127.0.0.1", 0, lambda raw: ACK, max_frame_bytes=1 << 16, idle_timeout=10, tls=tls, alerts=alerts
    )
    listener.start()
    return listener.port, listener.stop


def _dicom(tls: TlsConfig, alerts: AlertRecorder) -> tuple[int, Callable[[], None]]:
    config = DicomConfig(host="127.0.0.1", port=0, acse_timeout_seconds=10, tls=tls)
    listener = DicomListener(config, [(evt.EVT_C_ECHO, lambda event: 0x0000, [])], alerts)
    listener.start()
    return listener.port, listener.stop


@pytest.fixture(params=["hl7", "dicom"])
def listener(request: pytest.FixtureRequest, pki: Pki) -> Iterator[Listener]:
    alerts = AlertRecorder()
    port, stop = (_mllp if request.param == "hl7" else _dicom)(listener_tls(pki), alerts)
    yield Listener(port, alerts)
    stop()


def client_context(
    pki: Pki,
    identity: Pair | None,
    version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A probe that offers exactly `version` (and, for TLS 1.2 and below, `ciphers`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point of offering it
        warnings.simplefilter("ignore", DeprecationWarning)
        if version != ssl.TLSVersion.MAXIMUM_SUPPORTED:
            context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers + ":@SECLEVEL=0")
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The protocol version agreed, after a read that would show a late refusal (a
    TLS 1.3 server refuses a client certificate after the client thinks it is done)."""
    plain = socket.create_connection(("127.0.0.1", port), timeout=5)
    with context.wrap_socket(plain, server_hostname="localhost") as sock:
        sock.settimeout(0.5)
        try:
            if sock.recv(1) == b"":
                raise ConnectionResetError("closed after the handshake")
        except TimeoutError:  # accepted: the listener waits for our first message
            pass
        return str(sock.version())


#: Offers a BCP 195 listener must refuse; each one a permissive server takes (see below).
WEAK = {
    "TLS 1.1": (ssl.TLSVersion.TLSv1_1, "ALL"),
    "TLS 1.2 CBC-SHA1": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA"),
}


@pytest.mark.parametrize(
    ("version", "ciphers", "agreed"),
    [
        (ssl.TLSVersion.MAXIMUM_SUPPORTED, None, "TLSv1.3"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2"),
    ],
    ids=["TLS 1.3 preferred", "TLS 1.2 AEAD"],
)
def test_good_client_is_accepted(
    listener: Listener, pki: Pki, version: ssl.TLSVersion, ciphers: str | None, agreed: str
) -> None:
    assert handshake(listener.port, client_context(pki, pki.client, version, ciphers)) == agreed
    assert listener.alerts.received == []


@pytest.mark.parametrize("offer", WEAK)
def test_weak_protocol_or_cipher_is_refused_and_alerted(listener: Listener, pki: Pki, offer: str) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(listener.port, client_context(pki, pki.client, *WEAK[offer]))
    assert listener.alerts.wait_for(1, timeout=5)[0][0] == TLS_HANDSHAKE
    assert handshake(listener.port, client_context(pki, pki.client)) == "TLSv1.3"  # still serving


@pytest.mark.parametrize("offer", WEAK)
def test_weak_offers_are_real_a_permissive_server_takes_them(pki: Pki, offer: str) -> None:
    """Without this, a probe that cannot speak TLS 1.1 at all would pass the test above."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("ALL:@SECLEVEL=0")
    server.load_cert_chain(pki.server.cert, pki.server.key)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        client = socket.create_connection(listening.getsockname(), timeout=5)
        accepted, _ = listening.accept()
        client_side = client_context(pki, None, *WEAK[offer]).wrap_socket(
            client, server_hostname="localhost", do_handshake_on_connect=False
        )
        server_side = server.wrap_socket(accepted, server_side=True, do_handshake_on_connect=False)
        _complete(client_side, server_side)
        assert client_side.version() in ("TLSv1.1", "TLSv1.2")
        for sock in (client_side, server_side):
            sock.close()


def _complete(*sides: ssl.SSLSocket) -> None:
    """Drive two non-blocking ends of one handshake to completion in one thread."""
    for sock in sides:
        sock.setblocking(False)
    pending = list(sides)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        for sock in list(pending):
            try:
                sock.do_handshake()
                pending.remove(sock)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    assert not pending


@pytest.mark.parametrize("identity", ["none", "other CA"])
def test_client_without_a_certificate_from_our_ca_is_refused(listener: Listener, pki: Pki, identity: str) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(listener.port, client_context(pki, None if identity == "none" else pki.stranger))
    kind, _, detail = listener.alerts.wait_for(1, timeout=5)[0]
    assert kind == TLS_HANDSHAKE
    assert "CERTIFICATE" in detail.upper()


@pytest.mark.parametrize("talks", [True, False], ids=["sends plain bytes", "says nothing"])
def test_plain_tcp_is_closed_within_5s_and_others_are_served_meanwhile(
    listener: Listener, pki: Pki, talks: bool
) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as plain:
        if talks:  # an MLLP frame / the start of an A-ASSOCIATE-RQ: neither is a ClientHello
            plain.sendall(b"\x0bMSH|^~\\&|X\r\x1c\r")
        assert handshake(listener.port, client_context(pki, pki.client)) == "TLSv1.3"
        assert plain.recv(1024) == b""  # closed by the listener, no answer in clear
    assert time.monotonic() - started < 5
    assert listener.alerts.wait_for(1)[0][0] == TLS_HANDSHAKE


def test_dcmtk_echoscu_over_tls(pki: Pki, tmp_path: Path) -> None:
    """A real DICOM peer: DCMTK echoscu with its BCP 195 profile and our client
    certificate succeeds; with a certificate from another CA it is refused."""
    alerts = AlertRecorder()
    port, stop = _dicom(listener_tls(pki), alerts)
    try:
        good = _echoscu(port, pki, pki.client)
        assert good.returncode == 0, good.stderr
        bad = _echoscu(port, pki, pki.stranger)
        assert bad.returncode != 0
        assert alerts.wait_for(1, timeout=5)[0][0] == TLS_HANDSHAKE
    finally:
        stop()


def _echoscu(port: int, pki: Pki, identity: Pair) -> subprocess.CompletedProcess[str]:
    args = ["echoscu", "-aet", "MODALITY1", "-aec", "BROKER", "+tls", str(identity.key), str(identity.cert)]
    args += ["+cf", str(pki.ca), "127.0.0.1", str(port)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)
