"""An MPPS SCP standing in for an Image Manager that receives forwarded MPPS: it
records each N-CREATE / N-SET (operation, instance UID, status) in arrival order."""

from __future__ import annotations

import ssl
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from support.net import stop_serving
from support.recorder import Recorder


class MppsReceiver(Recorder[tuple[str, str, str]]):
    """Answers each operation with the next status of `statuses` (scripted, each used
    once), else Success; records every operation it answered, whatever the status."""

    def __init__(self, port: int, ae_title: str = "IMAGEMGR", ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self._ssl_context = ssl_context
        self.statuses: list[int] = []
        super().__init__("MPPS operations")
        self._ae = AE(ae_title=ae_title)
        self._ae.add_supported_context(ModalityPerformedProcedureStep)
        self._server: Any = None

    def _create(self, event: evt.Event) -> tuple[int, Dataset]:
        self._record("create", str(event.request.AffectedSOPInstanceUID), event.attribute_list)
        return self._status(), Dataset()

    def _set(self, event: evt.Event) -> tuple[int, Dataset]:
        self._record("set", str(event.request.RequestedSOPInstanceUID), event.modification_list)
        return self._status(), Dataset()

    def _status(self) -> int:
        return self.statuses.pop(0) if self.statuses else 0x0000

    def _record(self, operation: str, uid: str, ds: Dataset) -> None:
        self.record((operation, uid, str(ds.get("PerformedProcedureStepStatus", ""))))

    def start(self) -> MppsReceiver:
        handlers = [(evt.EVT_N_CREATE, self._create), (evt.EVT_N_SET, self._set)]
        self._server = self._ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers, ssl_context=self._ssl_context
        )
        return self

    def stop(self) -> None:
        stop_serving(self._server)
