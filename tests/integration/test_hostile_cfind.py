"""Hostile C-FIND identifiers, as properties (RELIABILITY.md F3), on SQLite and
PostgreSQL: whatever the keys hold (`*?` wildcards, `\\` multi-values, ranges, nested
sequences, 64 KiB values, `../`, NUL, any character set), the worklist path of the MWL
SCP (identifier → query → SQL reader → answer identifiers) gives an answer or one of
its refusals (InvalidInput → 0xA900, TooManyMatches → 0xA700) within 2 s: never an SQL
error, never another exception, no file written and none opened by a value's path
(tests/support/file_access.py). The identifier is encoded and decoded as it travels
(implicit VR little endian), so the handler sees what pynetdicom would hand it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from broker.actors.worklist_provider import TooManyMatches
from broker.app import Services
from broker.domain.errors import InvalidInput
from broker.mapping.mwl import AnswerPlan, query_from_identifier
from support.brokers import make_config
from support.file_access import recording
from support.hl7peer import sample
from support.measure import HANG_SECONDS, no_hang
from support.net import free_port
from support.postgres import PostgresServer

SHORT = st.lists(
    st.sampled_from([*"*?\\-=^%_'\";./ ~", "A", "MR", "CT", "DOE", "ACC", "2026", "1123", "0", ".", "ま", "é", "\x00"]),
    max_size=12,
).map("".join)
DATES = ["", "20261123", "2026", "99999999", "1000", "20261124", "x"]
RANGES = st.builds("{}-{}".format, st.sampled_from(DATES), st.sampled_from(DATES))
HUGE = st.builds(lambda c: c * 65536, st.sampled_from(["A", "*", "?", "\\", "%"]))
SOMETIMES_HUGE = st.integers(0, 20).flatmap(lambda k: HUGE if k == 0 else SHORT)  # one in 21 is 64 KiB long
VALUES = st.one_of(SHORT, RANGES, st.just("../../etc/passwd"), SOMETIMES_HUGE)

TOP = {
    "PatientName": "PN",
    "PatientID": "LO",
    "AccessionNumber": "SH",
    "RequestedProcedureID": "SH",
    "StudyInstanceUID": "UI",
    "PatientBirthDate": "DA",
}
STEP = {
    "ScheduledStationAETitle": "AE",
    "ScheduledStationName": "SH",
    "Modality": "CS",
    "ScheduledProcedureStepID": "SH",
    "ScheduledProcedureStepStartDate": "DA",
    "ScheduledProcedureStepStartTime": "TM",
    "ScheduledPerformingPhysicianName": "PN",
}
CHARSETS = st.sampled_from([None, "ISO_IR 192", "ISO 2022 IR 87", "ISO_IR 100", "ISO_IR 999", "\\ISO 2022 IR 87"])


def _element(keyword: str, vr: str, value: object) -> DataElement:
    return DataElement(tag_for_keyword(keyword) or 0, vr, value)


@dataclass(frozen=True)
class Identifier:
    """What to put in a C-FIND identifier; built into a Dataset inside the test, where
    pydicom's warnings about invalid values are silenced."""

    charset: str | None
    top: dict[str, str]
    steps: list[dict[str, str]] | None
    codes: list[str]

    def dataset(self) -> Dataset:
        identifier = Dataset()
        if self.charset is not None:
            identifier.SpecificCharacterSet = self.charset
        for keyword, value in self.top.items():
            identifier.add(_element(keyword, TOP[keyword], value))
        if self.steps is not None:
            items = []
            for keys in self.steps:
                step = Dataset()
                for keyword, value in keys.items():
                    step.add(_element(keyword, STEP[keyword], value))
                step.add(_element("ScheduledProtocolCodeSequence", "SQ", [self._code(c) for c in self.codes]))
                items.append(step)
            identifier.add(_element("ScheduledProcedureStepSequence", "SQ", items))
        return identifier

    @staticmethod
    def _code(value: str) -> Dataset:
        code = Dataset()
        code.add(_element("CodeValue", "SH", value))
        return code


def keys(names: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(sorted(names)), VALUES, max_size=len(names))


identifiers = st.builds(
    Identifier,
    charset=CHARSETS,
    top=keys(TOP),
    steps=st.none() | st.lists(keys(STEP), max_size=3),
    codes=st.lists(VALUES, max_size=2),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A store holding a few worklist entries; one per backend for the whole module."""
    if request.param == "sqlite":
        yield from _filled(f"sqlite:///{tmp_path_factory.mktemp('cfind') / 'broker.db'}")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield from _filled(url)


def _filled(url: str) -> Iterator[Services]:
    services = Services(make_config(free_port(), database_url=url))
    services.intake.handle(sample("rad-1-patient-registration/adt_a04.hl7"))
    for n in range(5):
        services.intake.handle(sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"Q{n}", PO1002=f"Q{n}"))
    services.intake.handle(sample("rad-2-placer-order/orm_o01_nw.hl7"))
    yield services
    services.close()


def wire(identifier: Dataset) -> Dataset:
    """The identifier after encoding and decoding, as the SCP handler receives it."""
    try:
        raw = encode(identifier, True, True)
    except Exception:  # a value the test made that no encoder writes: not an input
        reject()
    if raw is None:
        reject()
    return decode(BytesIO(raw), True, True)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # 64 KiB values make long reprs
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(identifier=identifiers, calling_ae=st.sampled_from(["MODALITY1", "../../x", "", "CT01"]))
# Found by this test, kept as regressions: a LIKE pattern SQLite finds too complex, NUL
# that PostgreSQL refuses in text, and a name pydicom's IR 87 decoder fails on.
@example(Identifier(None, {"AccessionNumber": "*" * 65536}, None, []), "MODALITY1")
@example(Identifier(None, {"AccessionNumber": "A\x00*"}, None, []), "MODALITY1")
@example(Identifier("ISO 2022 IR 87", {"PatientName": "*^ "}, None, []), "MODALITY1")
def test_any_identifier_gets_an_answer_or_a_refusal_within_2_s(
    services: Services, identifier: Identifier, calling_ae: str
) -> None:
    with warnings.catch_warnings(), recording() as accesses:
        warnings.simplefilter("ignore")  # pydicom warns on invalid values; the broker must still answer
        received = wire(identifier.dataset())
        started = time.monotonic()
        try:
            query = query_from_identifier(received, fold_case_names=services.profile.dicom.fold_case_names)
            entries = services.worklist.rad5_query_modality_worklist(query, calling_ae)
            plan = AnswerPlan(received, services.profile.dicom.character_sets)
            for entry in entries:
                plan.encode(entry, implicit=True)
        except (InvalidInput, TooManyMatches):
            pass
    no_hang(time.monotonic() - started, "F3 answer", limit=2 * HANG_SECONDS)
    assert accesses.paths_containing("etc/passwd") == [] and accesses.written() == set()  # no file access
