"""The two independent worklist clients behind one call, so that every RAD-5
conformance case runs through both: DCMTK `findscu` and dcmjs-dimse (find_scu.mjs).

A query is a keyword map (a list of dicts is a sequence, `[]` a zero-item sequence),
the form both clients take. Each answer comes back as the client decoded it, plus the
undecoded bytes of its PN elements and Specific Character Set by path, for the
byte-exact character set checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pydicom.charset import convert_encodings, encode_string
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from support.brokers import BrokerPool
from support.dicompeer import DimseFinder, findscu
from support.mpps import as_dataset

SUCCESS = 0x0000


@dataclass(frozen=True)
class Answer:
    identifier: Dataset
    raw: Mapping[str, bytes]


Client = Callable[[int, dict[str, Any], Path], list[Answer]]


def _raw_texts(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """PN and Specific Character Set values as read from the file, before decoding."""
    for tag in sorted(ds.keys()):  # keys, not elements: elements would be decoded
        path, vr = prefix + keyword_for_tag(tag), dictionary_VR(tag)
        if vr == "SQ":
            for index, item in enumerate(ds[tag].value):
                yield from _raw_texts(item, f"{path}[{index}].")
        elif vr == "PN" or path == "SpecificCharacterSet":
            value = ds.get_item(tag).value
            yield path, value if isinstance(value, bytes) else str(value).encode("ascii")


def by_findscu(port: int, query: dict[str, Any], workdir: Path) -> list[Answer]:
    answers = findscu(port, [], workdir, query=as_dataset(query))
    return [Answer(a, dict(_raw_texts(a))) for a in answers]


def _seven_bit(value: Any, encodings: list[str]) -> Any:
    """dcmjs writes text as UTF-8 whatever the character set says; ISO 2022 text is
    7-bit once escaped, so it is handed over already encoded."""
    if isinstance(value, dict):
        return {k: v if k == "SpecificCharacterSet" else _seven_bit(v, encodings) for k, v in value.items()}
    if isinstance(value, list):
        return [_seven_bit(v, encodings) for v in value]
    if isinstance(value, str) and not value.isascii():
        return encode_string(value, encodings).decode("ascii")
    return value


def by_dimse(finder: DimseFinder, port: int, query: dict[str, Any], workdir: Path) -> list[Answer]:
    charsets = query.get("SpecificCharacterSet", "")
    if "ISO 2022" in "".join(charsets):
        query = _seven_bit(query, convert_encodings(charsets if isinstance(charsets, list) else [charsets]))
    *pending, final = finder.find(port, query)
    assert final["status"] == SUCCESS, f"C-FIND ended with status {final['status']:#06x}"
    return [_answer(response) for response in pending]


def _answer(response: dict[str, Any]) -> Answer:
    """dcmjs decodes with the first character set term only and then rewrites the
    attribute to ISO_IR 192: the term on the wire comes back from the raw bytes."""
    raw = {path: bytes.fromhex(value) for path, value in response["raw"].items()}
    identifier = Dataset.from_json(response["identifier"])
    if "SpecificCharacterSet" in raw:
        terms = raw["SpecificCharacterSet"].decode("ascii").rstrip(" ").split("\\")
        identifier.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    return Answer(identifier, raw)


CLIENTS = ["findscu", "dcmjs-dimse"]


def client_named(request: pytest.FixtureRequest, name: str) -> Client:
    """findscu, or dcmjs-dimse through the session's `dimse_finder` (tests/conftest.py)."""
    if name == "findscu":
        return by_findscu
    return partial(by_dimse, request.getfixturevalue("dimse_finder"))


#: (backend, client) for the client-matrix tests: every client on SQLite; the SQL read
#: path on PostgreSQL too, through findscu (the second client adds the wire, not storage).
RUNS = [
    pytest.param(("sqlite", "findscu"), id="sqlite-findscu"),
    pytest.param(("sqlite", "dcmjs-dimse"), id="sqlite-dcmjs-dimse"),
    pytest.param(("postgresql", "findscu"), id="postgresql-findscu"),
]


def on_run(request: pytest.FixtureRequest, pool: BrokerPool, profile: str = "ihe-swf") -> tuple[int, Client]:
    """For a fixture parametrized with RUNS: the pool's broker's DICOM port, and the client."""
    backend, client = request.param
    return pool.get(request, backend, profile).dicom.port, client_named(request, client)


def full_answer_query() -> Dataset:
    """A query for every item that asks for the usual return keys: answers of a few
    hundred bytes, so 300 of them fill many of the broker's 16 KiB batches (answers to
    an accession-only query are so small that two batches hold them all)."""
    step = Dataset()
    for keyword in ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"):
        setattr(step, keyword, "")
    for keyword in ("Modality", "ScheduledProcedureStepDescription", "ScheduledProcedureStepID"):
        setattr(step, keyword, "")
    query = Dataset()
    for keyword in ("AccessionNumber", "PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(query, keyword, "")
    for keyword in ("StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription"):
        setattr(query, keyword, "")
    query.ScheduledProcedureStepSequence = [step]
    return query
