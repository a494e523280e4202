"""Senders that tests drive streams with: an MLLP client that reconnects after the
broker restarts, an MPPS SCU (pynetdicom) with one association per operation, and a
timed C-ECHO."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep, Verification  # type: ignore[attr-defined]

from broker.hl7.mllp import exchange
from support.hl7peer import ack_code


class Hl7Sender:
    """One MLLP connection, reopened after the broker restarts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def __call__(self, message: bytes) -> Callable[[], object]:
        return lambda: self.send(message)

    def send(self, message: bytes) -> str:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            return str(ack_code(exchange(self.sock, message)))
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class MppsSender:
    """An MPPS SCU (pynetdicom): one association per operation, as a modality that
    reconnects for each message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ae = AE(ae_title="CT01")
        self.ae.add_requested_context(ModalityPerformedProcedureStep)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 60

    def create(self, uid: str, attributes: Dataset) -> Callable[[], object]:
        return lambda: self._send(lambda assoc: assoc.send_n_create(attributes, ModalityPerformedProcedureStep, uid))

    def set(self, uid: str, modification: Dataset) -> Callable[[], object]:
        return lambda: self._send(lambda assoc: assoc.send_n_set(modification, ModalityPerformedProcedureStep, uid))

    def _send(self, operation: Callable[[Association], tuple[Dataset, object]]) -> int:
        assoc = self.ae.associate("127.0.0.1", self.port, ae_title="BROKER")
        if not assoc.is_established:
            raise ConnectionError("no association")
        try:
            status, _ = operation(assoc)
            if "Status" not in status:
                raise ConnectionError("no answer")
            return int(status.Status)
        finally:
            if assoc.is_established:
                assoc.release()


def echo(port: int) -> float:
    """Seconds one C-ECHO association (associate, echo, release) took; asserts success."""
    started = time.monotonic()
    ae = AE(ae_title="ECHOSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()
    return time.monotonic() - started
