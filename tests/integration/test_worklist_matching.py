"""RAD-5 matching (PS3.4 C.2.2.2 and K.2.2.1), each rule through both independent
clients: DCMTK findscu and dcmjs-dimse.

One broker per backend for the whole module, its worklist loaded once (the tests only
read); the runs are support.worklist_clients.RUNS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from broker.app import Broker
from broker.store import tables as t
from support.brokers import BrokerPool
from support.hl7peer import sample, send
from support.worklist_clients import CLIENTS, RUNS, Answer, Client, client_named, on_run

SECOND_ORDER = {
    "ORM0001": "ORM0009", "PO1001": "PO2001", "FO1001": "FO2001", "ACC1001": "ACC2001", "RP1001": "RP2001",
    "SPS1001": "SPS2001", "PAT001": "PAT002", "DOE^JOHN^Q": "ROE^JANE", "20261123100000": "20261124143000",
    "9999.1.1001": "9999.1.2001",
}  # fmt: skip
UID = "1.2.392.200036.9999.1."
ALL = ["SPS1001", "SPS2001", "SPS4001A", "SPS4002A"]
DOE = ["SPS1001", "SPS4001A", "SPS4002A"]
OMI = ["SPS4001A", "SPS4002A"]


def load_worklist(broker: Broker) -> Broker:
    """Four steps, all CT: SPS1001 (DOE^JOHN^Q, PAT001, ACC1001, 23 Nov 10:00, CT01),
    SPS2001 (ROE^JANE, PAT002, ACC2001, 24 Nov 14:30, CT01), and an OMI order's
    SPS4001A / SPS4002A (DOE^JOHN^Q, ACC4001, RP4001 / RP4002, 23 Nov 15:00, stations
    CT01 / CT02 named CTSTATION1 / CTSTATION2 in ROOM1 / ROOM2). HL7 intake maps no
    Scheduled Performing Physician, so the store gives SPS2001 one."""
    send(
        broker.hl7.port,
        sample("rad-2-placer-order/orm_o01_nw.hl7"),
        sample("rad-2-placer-order/orm_o01_nw.hl7", **SECOND_ORDER),
        sample("rad-4-procedure-scheduled/omi_o23_two_ipc.hl7"),
    )
    steps = t.scheduled_steps
    with broker.engine.begin() as conn:
        conn.execute(update(steps).where(steps.c.sps_id == "SPS2001").values(performing_physician="HOUSE^GREGORY"))
    return broker


@pytest.fixture(scope="module")
def worklists() -> Iterator[BrokerPool]:
    with ExitStack() as stack:
        yield BrokerPool(stack, load_worklist)


@pytest.fixture(params=RUNS)
def run(request: pytest.FixtureRequest, worklists: BrokerPool) -> tuple[int, Client]:
    return on_run(request, worklists)


def query(top: dict[str, Any] | None = None, **step: Any) -> dict[str, Any]:
    """`top` and `step` keys plus the two that name each answer."""
    return {
        "AccessionNumber": "",
        **(top or {}),
        "ScheduledProcedureStepSequence": [{"ScheduledProcedureStepID": "", **step}],
    }


def steps_of(answers: list[Answer]) -> list[str]:
    return sorted(a.identifier.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID for a in answers)


CASES = [
    pytest.param(query(), ALL, id="universal-C.2.2.2.3"),
    pytest.param(query({"PatientName": "DOE*"}), DOE, id="PN-wildcard-star-C.2.2.2.4"),
    pytest.param(query({"PatientName": "?OE^JANE"}), ["SPS2001"], id="PN-wildcard-question-C.2.2.2.4"),
    pytest.param(query({"PatientName": "ROE^JANE"}), ["SPS2001"], id="PN-single-value-C.2.2.2.1"),
    pytest.param(query({"PatientName": "DOE"}), [], id="PN-single-value-is-exact-C.2.2.2.1"),
    pytest.param(query({"PatientName": "doe*"}), [], id="PN-case-sensitive-by-default-C.2.2.2.1"),
    pytest.param(query({"PatientID": "PAT002"}), ["SPS2001"], id="LO-patient-id-single-value-C.2.2.2.1"),
    pytest.param(query({"PatientID": "*2"}), ["SPS2001"], id="LO-patient-id-wildcard-star-C.2.2.2.4"),
    pytest.param(query({"PatientID": "PAT00?"}), ALL, id="LO-patient-id-wildcard-question-C.2.2.2.4"),
    pytest.param(query({"AccessionNumber": "ACC1001"}), ["SPS1001"], id="SH-accession-single-value-C.2.2.2.1"),
    pytest.param(query({"AccessionNumber": "ACC4*"}), OMI, id="SH-accession-wildcard-star-C.2.2.2.4"),
    pytest.param(query({"AccessionNumber": "A?C2001"}), ["SPS2001"], id="SH-accession-wildcard-question-C.2.2.2.4"),
    pytest.param(query({"RequestedProcedureID": "RP4002"}), ["SPS4002A"], id="SH-requested-procedure-id-C.2.2.2.1"),
    pytest.param(query({"RequestedProcedureID": "RP4*"}), OMI, id="SH-requested-procedure-id-wildcard-C.2.2.2.4"),
    pytest.param(
        query({"StudyInstanceUID": [f"{UID}1001", f"{UID}4002"]}),
        ["SPS1001", "SPS4002A"],
        id="UI-list-of-UID-C.2.2.2.2",
    ),
    pytest.param(query({"StudyInstanceUID": f"{UID}2001"}), ["SPS2001"], id="UI-single-UID-C.2.2.2.2"),
    pytest.param(query(Modality="CT"), ALL, id="SPS-modality-in-sequence-C.2.2.2.6-K.6.1.2"),
    pytest.param(query(Modality="MR"), [], id="SPS-modality-no-match-C.2.2.2.6"),
    pytest.param(query(ScheduledStationAETitle="CT02"), ["SPS4002A"], id="SPS-station-AE-C.2.2.2.6-K.6.1.2"),
    pytest.param(query(ScheduledStationName="CTSTATION1"), ["SPS4001A"], id="SPS-station-name-C.2.2.2.6-K.6.1.2"),
    pytest.param(query(ScheduledStationName="CTSTATION*"), OMI, id="SPS-station-name-wildcard-C.2.2.2.4"),
    pytest.param(query(ScheduledProcedureStepLocation="ROOM2"), ["SPS4002A"], id="SPS-location-C.2.2.2.6-K.6.1.2"),
    pytest.param(
        query(ScheduledPerformingPhysicianName="HOUSE^GREGORY"), ["SPS2001"], id="SPS-performing-physician-K.6.1.2"
    ),
    pytest.param(
        query(ScheduledPerformingPhysicianName="HOUSE*"), ["SPS2001"], id="SPS-performing-physician-wildcard-C.2.2.2.4"
    ),
    pytest.param(query(ScheduledProcedureStepID="SPS4001A"), ["SPS4001A"], id="SPS-id-single-value-C.2.2.2.1"),
    pytest.param(query(ScheduledProcedureStepStartDate="20261124"), ["SPS2001"], id="DA-single-value-C.2.2.2.5"),
    pytest.param(query(ScheduledProcedureStepStartDate="20261101-20261123"), DOE, id="DA-range-C.2.2.2.5"),
    pytest.param(query(ScheduledProcedureStepStartDate="20261124-"), ["SPS2001"], id="DA-open-end-C.2.2.2.5"),
    pytest.param(query(ScheduledProcedureStepStartDate="-20261123"), DOE, id="DA-open-start-C.2.2.2.5"),
    pytest.param(
        query(ScheduledProcedureStepStartDate="20261123-20261124", ScheduledProcedureStepStartTime="1200-1500"),
        ["SPS2001", "SPS4001A", "SPS4002A"],
        id="DA-TM-combined-range-C.2.2.2.5.1",
    ),
    pytest.param(
        query(ScheduledProcedureStepStartTime="1400-1600"),
        ["SPS2001", "SPS4001A", "SPS4002A"],
        id="TM-only-range-C.2.2.2.5",
    ),
    pytest.param(query(ScheduledProcedureStepStartTime="-1200"), ["SPS1001"], id="TM-only-open-start-C.2.2.2.5"),
    pytest.param(query(ScheduledProcedureStepStartTime="1430"), ["SPS2001"], id="TM-single-value-C.2.2.2.5"),
]


@pytest.mark.parametrize(("keys", "expected"), CASES)
def test_rad5_matching(run: tuple[int, Client], tmp_path: Path, keys: dict[str, Any], expected: list[str]) -> None:
    port, client = run
    assert steps_of(client(port, keys, tmp_path)) == expected


@pytest.mark.parametrize("item", [pytest.param([{}], id="zero-length-item"), pytest.param([], id="zero-items")])
def test_empty_sequence_matches_universally_C_2_2_2_6(
    run: tuple[int, Client], tmp_path: Path, item: list[dict[str, Any]]
) -> None:
    port, client = run
    answers = client(port, {"AccessionNumber": "", "ScheduledProcedureStepSequence": item}, tmp_path)
    assert sorted(a.identifier.AccessionNumber for a in answers) == ["ACC1001", "ACC2001", "ACC4001", "ACC4001"]


FOLD_CASE_PROFILE = str(Path(__file__).resolve().parents[1] / "support" / "profiles" / "fold-case-names.yaml")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (query({"PatientName": "doe*"}), DOE),
        (query({"PatientName": "rOE^jane"}), ["SPS2001"]),
        (query({"PatientName": "d?e^JOHN^q"}), DOE),
        (query({"PatientName": "DOE"}), []),
        (query(ScheduledPerformingPhysicianName="house^*"), ["SPS2001"]),
    ],
    ids=["star", "single-value", "question", "still-whole-value", "performing-physician"],
)
def test_case_insensitive_PN_option_C_2_2_2_1(
    request: pytest.FixtureRequest,
    worklists: BrokerPool,
    tmp_path: Path,
    client: str,
    keys: dict[str, Any],
    expected: list[str],
) -> None:
    """Profile `dicom.fold_case_names: true`; the same names are case-sensitive by default
    (`PN-case-sensitive-by-default-C.2.2.2.1` above)."""
    broker = worklists.get(request, "sqlite", profile=FOLD_CASE_PROFILE)
    assert steps_of(client_named(request, client)(broker.dicom.port, keys, tmp_path)) == expected
