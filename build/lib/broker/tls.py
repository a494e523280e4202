"""The one place that builds TLS contexts, for DICOM (PS3.15 B.12) and MLLP alike.

Both sides follow BCP 195 as PS3.15 B.12 asks: TLS 1.2 or 1.3 only (1.3 is
negotiated whenever the peer has it), and for TLS 1.2 only ECDHE key exchange with
AEAD ciphers (AES-GCM, ChaCha20-Poly1305), so RC4, 3DES, NULL, EXPORT and the CBC-SHA1
suites are never offered nor accepted. TLS 1.3 suites are all AEAD already.
"""

from __future__ import annotations

import ssl

from broker.config import ConfigError, TlsConfig

#: OpenSSL cipher string for TLS 1.2: forward secrecy and authenticated encryption only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1"


def _harden(context: ssl.SSLContext, config: TlsConfig) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if config.cert is not None:
        context.load_cert_chain(config.cert, config.key)
    return context


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """For a listener: its own certificate, and the client's checked against `ca` —
    required when `require_client_cert`, else checked only when one is presented."""
    if config.cert is None:
        raise ConfigError("tls.cert: a TLS listener needs its certificate (and tls.key)")
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), config)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if config.ca is not None:
        context.load_verify_locations(cafile=config.ca)
        context.verify_mode = ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """For a destination: the server's certificate and name are always checked (against
    `ca`, else the system's trust store); `cert`/`key` are presented when set."""
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), config)
    if config.ca is not None:
        context.load_verify_locations(cafile=config.ca)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


def optional_server_context(config: TlsConfig | None) -> ssl.SSLContext | None:
    return server_context(config) if config else None


def optional_client_context(config: TlsConfig | None) -> ssl.SSLContext | None:
    return client_context(config) if config else None


def handshake(sock: ssl.SSLSocket, timeout: float) -> str | None:
    """Complete a server-side handshake on a blocking socket within `timeout`; None
    when done, else why it failed (a plain-TCP peer, an old protocol version, no
    shared cipher, a bad client certificate, or silence). The socket's own timeout is
    restored afterwards."""
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        sock.do_handshake()
    except OSError as exc:
        return failure_reason(exc)
    finally:
        sock.settimeout(previous)
    return None


def failure_reason(exc: OSError) -> str:
    """A handshake failure in a few words, e.g. WRONG_VERSION_NUMBER (plain TCP),
    UNSUPPORTED_PROTOCOL, NO_SHARED_CIPHER, CERTIFICATE_VERIFY_FAILED, TimeoutError."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    return type(exc).__name__
