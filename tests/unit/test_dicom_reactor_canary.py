"""Canary for the pynetdicom internals broker/dicom/reactor.py and guard.py rely on
(issue #17): the event-driven association reactors replace pynetdicom's polling loops
and re-class the instances its RequestHandler builds. pynetdicom is pinned to the exact
version in pyproject.toml; an upgrade that changes any of the code below fails here,
and the reactors must be re-read against the new code before the pin moves."""

from __future__ import annotations

import hashlib
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

from pynetdicom import fsm
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.timer import Timer
from pynetdicom.transport import AssociationSocket, RequestHandler

#: What the reactors re-implement (the polling loops), override or call (RawFinalStatus:
#: the DIMSE send that every service class calls, and the peer limit it fragments to).
RELIED_ON = (
    DIMSEServiceProvider.send_msg,
    DIMSEServiceProvider.maximum_pdu_size.fget,  # type: ignore[attr-defined]
    DULServiceProvider.__init__,
    DULServiceProvider.run_reactor,
    DULServiceProvider._is_transport_event,
    DULServiceProvider._process_recv_primitive,
    DULServiceProvider._read_pdu_data,
    DULServiceProvider._send,
    DULServiceProvider.kill_dul,
    DULServiceProvider.stop_dul,
    DULServiceProvider.receive_pdu,
    Association.__init__,
    Association.run_reactor,
    Association._run_reactor,
    Association.kill,
    Association._abort_blocking,
    AssociationSocket.ready.fget,  # type: ignore[attr-defined]
    AssociationSocket.send,
    AssociationSocket.close,
    RequestHandler._create_association,
    Timer.start,
    Timer.stop,
    Timer.remaining.fget,  # type: ignore[attr-defined]
    fsm.AR_4,
    fsm.AA_2,
    fsm.AA_3,
    fsm.AA_4,
    fsm.DT_2,
)
#: sha256 of their source in pynetdicom 3.0.4, with the state machine's transition table.
FINGERPRINT = "24e35e536ee48bce1b97b66a075a1c5f8b6d480de657658895b2072dd783a0a8"


def _pinned() -> str:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    [pin] = [d for d in pyproject["project"]["dependencies"] if d.startswith("pynetdicom")]
    return pin.removeprefix("pynetdicom==")


def test_pynetdicom_is_the_pinned_version() -> None:
    assert version("pynetdicom") == _pinned()


def test_pynetdicom_internals_the_reactors_rely_on_are_unchanged() -> None:
    digest = hashlib.sha256()
    for function in RELIED_ON:
        digest.update(inspect.getsource(function).encode())
    digest.update(repr(sorted(fsm.TRANSITION_TABLE.items())).encode())
    assert digest.hexdigest() == FINGERPRINT
