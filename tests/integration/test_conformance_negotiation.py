"""What the live broker accepts is exactly what its Conformance Statement says: an SCU
proposes every SOP class and every transfer syntax pydicom knows, and the accepted
(SOP class, transfer syntax) pairs must equal the statement's acceptance table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import UID_dictionary
from pynetdicom import AE

from broker.app import Broker
from broker.conformance.statement import render
from support.brokers import make_config
from support.net import free_port

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255


def _uids(kind: str) -> list[str]:
    return sorted(uid for uid, entry in UID_dictionary.items() if entry[1] == kind)


def _accepted(port: int, proposals: list[tuple[str, list[str]]]) -> set[tuple[str, str]]:
    """(abstract syntax, transfer syntax) of each accepted context, over as many
    associations as the proposals need."""
    accepted: set[tuple[str, str]] = set()
    for start in range(0, len(proposals), MAX_CONTEXTS):
        ae = AE(ae_title="NEGOTIATOR")
        for sop_class, syntaxes in proposals[start : start + MAX_CONTEXTS]:
            ae.add_requested_context(sop_class, syntaxes)
        assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
        # A batch with nothing accepted ends in an abort by the requestor (no usable context).
        accepted |= {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts}
        if assoc.is_established:
            assoc.release()
    return accepted


def _statement_pairs(markdown: str) -> set[tuple[str, str]]:
    """The rows of the Association Acceptance Policy's presentation context table."""
    section = markdown.split("4.2.1.4 Association Acceptance Policy")[1].split("4.2.1.5")[0]
    pairs, sop_class = set(), ""
    for row in re.findall(r"^\|(.*)\|$", section, re.MULTILINE):
        cells = [c.strip() for c in row.split("|")]
        if not re.fullmatch(r"[0-9.]+", cells[3]):
            continue
        sop_class = cells[1] or sop_class
        pairs.add((sop_class, cells[3]))
    return pairs


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    instance = Broker(make_config(free_port(), database_url=f"sqlite:///{tmp_path / 'broker.db'}"))
    instance.start()
    yield instance
    instance.stop()


def test_broker_accepts_exactly_what_the_statement_lists(broker: Broker) -> None:
    syntaxes = _uids("Transfer Syntax")
    sop_classes = _uids("SOP Class")
    assert len(sop_classes) > 200 and len(syntaxes) > 30  # "everything pydicom knows" really is a lot

    # Which SOP classes are accepted at all (any transfer syntax), then, for those, each syntax alone.
    accepted_classes = {sop for sop, _ in _accepted(broker.dicom.port, [(sop, syntaxes) for sop in sop_classes])}
    accepted = _accepted(broker.dicom.port, [(sop, [ts]) for sop in sorted(accepted_classes) for ts in syntaxes])

    stated = _statement_pairs(render(broker.config, "markdown"))
    assert accepted == stated
    assert {sop for sop, _ in stated} == {
        "1.2.840.10008.1.1",
        "1.2.840.10008.5.1.4.31",
        "1.2.840.10008.3.1.2.3.3",
        "1.2.840.10008.3.1.2.3.4",  # MPPS Retrieve (N-GET, PS3.4 F.8)
    }
