"""The decoders `bench/fuzz.py` drives with atheris (RELIABILITY.md F1), each a
function of bytes. A decoder may return, or raise the refusal the broker answers with
(a DomainError → AE/AR or a DIMSE status, TooManyMatches); anything else escaping it
is a finding, as are hangs and memory blow-ups (libFuzzer's -timeout, -rss_limit_mb).

Datasets are first read as pynetdicom hands them to the handlers, and fully parsed:
bytes pydicom cannot read are refused by pynetdicom before the broker sees them, so
the broker's part starts from a dataset pydicom could read.
"""

from __future__ import annotations

import contextlib
import warnings
from io import BytesIO

import hl7
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode as decode_dataset

from broker.actors.worklist_provider import TooManyMatches
from broker.domain.errors import DomainError
from broker.errors import UnsupportedMessage
from broker.hl7.header import MessageHeader
from broker.mapping.charsets import decode
from broker.mapping.hl7_in import interpret
from broker.mapping.mpps import merge, performed_step_from
from broker.mapping.mwl import AnswerPlan, query_from_identifier
from broker.mapping.profile import load_profile

PROFILES = [load_profile("ihe-swf"), load_profile("jahis")]
REFUSALS = (DomainError, UnsupportedMessage, TooManyMatches)
warnings.simplefilter("ignore")  # pydicom warns on every odd value; findings are exceptions


def hl7_decoder(data: bytes) -> None:
    """Intake's path up to the Order Filler: MSH, MSH-18 codec, parse, commands."""
    MessageHeader.read(data)
    for profile in PROFILES:
        try:
            text = decode(data, profile.hl7_in.charsets)
        except DomainError:
            continue
        try:
            message = hl7.parse(text.replace("\n", "\r"))
        except Exception:  # python-hl7 raises several types: the intake answers AE for any
            continue
        with contextlib.suppress(REFUSALS):
            interpret(message, profile)


def _dataset(data: bytes) -> Dataset | None:
    """The dataset with every value read, or None where pydicom cannot read it.
    `iterall` walks into every item, so sequences are not str()-ed themselves: that is
    pydicom's pretty-print of the whole tree (27 s for one deeply nested unit of the
    30-minute run), which times the harness, not the broker (which never prints one)."""
    try:
        dataset = decode_dataset(BytesIO(data), True, True)
        for element in dataset.iterall():
            if element.VR != "SQ":
                str(element.value)
    except Exception:
        return None
    return dataset


def cfind_identifier(data: bytes) -> None:
    """A C-FIND identifier as the MWL SCP reads it: the query, then the answer plan."""
    identifier = _dataset(data)
    if identifier is None:
        return
    for profile in PROFILES:
        try:
            query_from_identifier(identifier, fold_case_names=profile.dicom.fold_case_names)
            AnswerPlan(identifier, profile.dicom.character_sets)
        except REFUSALS:
            pass


def mpps_dataset(data: bytes) -> None:
    """An N-CREATE attribute list, then the same bytes as an N-SET modification of it."""
    attributes = _dataset(data)
    if attributes is None:
        return
    rules = PROFILES[0].mpps
    try:
        step = performed_step_from(attributes, "1.2.3.4", rules)
        merge(step.attributes, attributes, rules)
    except REFUSALS:
        pass


TARGETS = {"hl7": hl7_decoder, "cfind": cfind_identifier, "mpps": mpps_dataset}
