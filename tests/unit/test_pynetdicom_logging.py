"""pynetdicom's own logging costs a decode and a pretty print of every C-FIND
identifier, plus a handler per PDU, even with its logger silenced, and its lines quote
patient values: the broker turns that work off unless `log_level` is DEBUG."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt, service_class
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker import logs
from support.net import free_port


def _find_once(monkeypatch: pytest.MonkeyPatch, *, debug: bool) -> list[Dataset]:
    """One C-FIND between two pynetdicom AEs in this process, after the broker's
    choice for `debug`; returns the identifiers pynetdicom pretty-printed."""
    monkeypatch.setattr(_config, "LOG_REQUEST_IDENTIFIERS", True)  # pynetdicom's defaults, restored after
    monkeypatch.setattr(_config, "LOG_HANDLER_LEVEL", "standard")
    printed: list[Dataset] = []
    monkeypatch.setattr(service_class, "pretty_dataset", lambda ds, *a, **k: printed.append(ds) or [])
    logs._pynetdicom_logging(debug=debug)

    def nothing(event: Any) -> Iterator[tuple[int, None]]:
        yield 0x0000, None

    scp = AE(ae_title="SCP")
    scp.add_supported_context(ModalityWorklistInformationFind)
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, nothing)])
    try:
        scu = AE(ae_title="SCU")
        scu.add_requested_context(ModalityWorklistInformationFind)
        assoc = scu.associate("127.0.0.1", port, ae_title="SCP")
        query = Dataset()
        query.PatientName = "YAMADA^TAROU"
        assert [status.Status for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind)] == [0]
        assoc.release()
    finally:
        server.shutdown()
    return printed


def test_no_identifier_decoded_or_printed_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _find_once(monkeypatch, debug=False) == []
    assert _config.LOG_HANDLER_LEVEL == "none"


def test_debugging_keeps_pynetdicom_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    [identifier] = _find_once(monkeypatch, debug=True)
    assert identifier.PatientName == "YAMADA^TAROU"
