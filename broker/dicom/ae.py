"""The broker's Application Entity: the SOP classes it serves and its network limits.

Accepted sockets get TCP_NODELAY: without it every DIMSE exchange stalls ~40 ms on
delayed ACKs (measured with DCMTK peers).

With TLS, the handshake runs on the association's own thread with a deadline:
pynetdicom's server does it on the accepting thread, where one silent plain-TCP client
would stop every other peer from connecting.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.events import EventHandlerType
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
    ModalityWorklistInformationFind,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from broker.config import DicomConfig
from broker.dicom.guard import GuardedRequestHandler, PduLimits
from broker.dicom.policy import AssociationPolicy, admit
from broker.security import TLS_HANDSHAKE, LoggedAlerts, SecurityAlerts
from broker.tls import handshake, optional_server_context

#: The SOP classes the broker accepts as SCP; the Conformance Statement reads this.
SCP_SOP_CLASSES = (
    Verification,
    ModalityWorklistInformationFind,
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
)
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


class _NoDelayServer(ThreadedAssociationServer):
    alerts: SecurityAlerts = LoggedAlerts()
    handshake_timeout: float = 5.0
    #: Connections waiting to be accepted. socketserver's default of 5 overflows when
    #: modalities connect at once (measured: 200 at once, some dropped and reset); the
    #: kernel caps it at net.core.somaxconn.
    request_queue_size = 256
    #: A connection thread waits up to ARTIM for its first bytes (broker/dicom/guard.py):
    #: it must not hold the process open at shutdown.
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        if isinstance(request, ssl.SSLSocket):
            failure = handshake(request, self.handshake_timeout)
            if failure is not None:
                self.alerts.refused(TLS_HANDSHAKE, f"{client_address[0]}:{client_address[1]}", f"DICOM: {failure}")
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    _stopping = False

    def service_actions(self) -> None:
        """pynetdicom's, except while stopping: it runs a full `gc.collect()` every 60
        loop turns, and the turns between the wake-up and the stop request are quick."""
        if not self._stopping:
            super().service_actions()

    def shutdown(self) -> None:
        """Stop serving. (The inherited shutdown also unlists the server from its AE,
        which only `AE.start_server` lists it in.) The listening socket is shut down
        first: it then reads as ready (Linux), so `serve_forever` wakes at once instead
        of at its next half-second poll, accepts nothing and sees the stop request."""
        assert self.socket is not None
        self._stopping = True
        self.socket.shutdown(socket.SHUT_RDWR)
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def build_ae(config: DicomConfig) -> AE:
    ae = AE(ae_title=config.ae_title)
    for sop_class in SCP_SOP_CLASSES:
        ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
    ae.maximum_associations = config.max_associations
    ae.acse_timeout = config.acse_timeout_seconds
    ae.dimse_timeout = config.dimse_timeout_seconds
    ae.network_timeout = config.network_timeout_seconds
    ae.require_called_aet = True
    return ae


class DicomListener:
    """The SCP listener; calling AE titles, addresses and services are checked by
    `broker.dicom.policy` and every refusal is reported to `alerts`."""

    def __init__(
        self, config: DicomConfig, handlers: list[EventHandlerType], alerts: SecurityAlerts | None = None
    ) -> None:
        self._config = config
        self._ae = build_ae(config)
        alerts = alerts or LoggedAlerts()
        admission: EventHandlerType = (evt.EVT_REQUESTED, admit, [AssociationPolicy(config), alerts])
        self._server = self._ae.make_server(
            (config.host, config.port),
            evt_handlers=[admission, *handlers],
            server_class=_NoDelayServer,
            ssl_context=optional_server_context(config.tls),
            request_handler=partial(GuardedRequestHandler, limits=pdu_limits(config, self._ae)),
        )
        assert isinstance(self._server, _NoDelayServer)
        self._server.alerts = alerts
        if config.tls:
            self._server.handshake_timeout = config.tls.handshake_timeout_seconds
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dicom", daemon=True)

    def bind(self, event: evt.EventType, handler: Callable[..., Any]) -> None:
        """One more handler for an association event, on current and future
        associations (pynetdicom's own hook: monitoring, or a test slowing the link)."""
        self._server.bind(event, handler)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def pdu_limits(config: DicomConfig, ae: AE) -> PduLimits:
    """The limits every accepted socket is read under (broker/dicom/guard.py)."""
    return PduLimits(
        association_seconds=config.acse_timeout_seconds,
        established_seconds=config.network_timeout_seconds,
        max_pdata_bytes=ae.maximum_pdu_size,
        max_message_bytes=config.max_message_bytes,
    )
