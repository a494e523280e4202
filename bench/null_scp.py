"""A do-nothing Modality Worklist SCP: answers every C-FIND with N copies of one
canned identifier, encoded once, without looking anything up.

The copies go out through the broker's raw pending-response path
(broker/dicom/pending.py), which costs a few µs each, so timed with the same client as
the real SCPs its time is the client's own cost (pynetdicom receiving and decoding N
answers): the floor under every SCP in the table. Run as
`python -m bench.null_scp --port P --canned item.wl --filtered 10 --universal 1000`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.dsutils import encode

from broker.config import DicomConfig
from broker.dicom.ae import DicomListener
from broker.dicom.pending import PendingResponses

AE_TITLE = "NULLSCP"


def select(full: Dataset, request: Dataset) -> Dataset:
    """The keys `request` asks for, with the values `full` holds (empty if none), as
    an MWL SCP answers: the canned answer has the size of a real one."""
    answer = Dataset()
    for element in request:
        held = full.get(element.tag)
        if element.VR == "SQ":
            if held is None:
                answer.add(DataElement(element.tag, "SQ", Sequence()))
            elif element.value:
                items = [select(item, element.value[0]) for item in held.value]
                answer.add(DataElement(element.tag, "SQ", Sequence(items)))
            else:
                answer.add(held)
        else:
            answer.add(held if held is not None else DataElement(element.tag, element.VR, None))
    return answer


def _is_filtered(request: Dataset) -> bool:
    steps = request.get("ScheduledProcedureStepSequence")
    return bool(steps and str(steps[0].get("ScheduledStationAETitle", "") or "").strip())


def handle_find(
    event: evt.Event, canned: Dataset, filtered: int, universal: int
) -> Iterator[tuple[int, Dataset | None]]:
    request = event.identifier
    implicit = event.context.transfer_syntax == ImplicitVRLittleEndian
    answer = encode(select(canned, request), implicit, True) or b""
    pending = PendingResponses(event)
    for _ in range(filtered if _is_filtered(request) else universal):
        pending.send(answer)
    pending.flush()
    yield 0x0000, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--canned", type=Path, required=True, help="a .wl file: the one answer repeated")
    parser.add_argument("--filtered", type=int, required=True, help="answers to a query naming a station")
    parser.add_argument("--universal", type=int, required=True, help="answers to any other query")
    parser.add_argument("--max-associations", type=int, default=10)
    args = parser.parse_args()

    canned = pydicom.dcmread(args.canned)
    # The broker's own listener (its event-driven socket owner, which PendingResponses
    # writes through), with nothing behind it but the canned answer.
    config = DicomConfig(
        ae_title=AE_TITLE, host="127.0.0.1", port=args.port, max_associations=args.max_associations,
        dimse_timeout_seconds=3600, network_timeout_seconds=3600,
    )  # fmt: skip
    listener = DicomListener(config, [(evt.EVT_C_FIND, handle_find, [canned, args.filtered, args.universal])])
    listener.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    listener.stop()


if __name__ == "__main__":
    main()
