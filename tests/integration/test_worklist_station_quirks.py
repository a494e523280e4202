"""Per-modality quirks as profile data (`dicom.stations`): what one calling AE's answers
need beyond the standard, through DCMTK findscu and dcmjs-dimse. The station is
MODALITY1 (both clients' calling AE); another AE still gets the standard answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from broker.mapping.profile import ProfileError, load_profile
from support.brokers import BrokerPool
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, send
from support.mpps import as_dataset
from support.worklist_clients import CLIENTS, client_named

PROFILE = str(Path(__file__).resolve().parents[1] / "support" / "profiles" / "station-quirks.yaml")
QUERY: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 192",
    "PatientID": "JP0001",
    "PatientName": "",
    "RequestedProcedureDescription": "",
    "ScheduledProcedureStepSequence": [{"ScheduledProcedureStepDescription": "", "Modality": ""}],
}


def _load(broker: Broker) -> None:
    [ack] = send(broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"))
    assert ack_code(ack) == "AA"


@pytest.fixture(scope="module")
def pool() -> Iterator[BrokerPool]:
    with ExitStack() as stack:
        yield BrokerPool(stack, _load)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stations_quirks_shape_its_answers(
    request: pytest.FixtureRequest, pool: BrokerPool, client: str, tmp_path: Path
) -> None:
    port = pool.get(request, "sqlite", PROFILE).dicom.port
    ask = client_named(request, client)
    [names] = ask(port, {"SpecificCharacterSet": "ISO_IR 192", "PatientID": "JP0001", "PatientName": ""}, tmp_path)
    assert str(names.identifier.PatientName) == "YAMADA^TAROU"  # no ideographic or phonetic group
    assert names.raw["SpecificCharacterSet"].rstrip(b" ") == b"ISO_IR 100"  # its set, not the ISO_IR 192 asked for
    [answer] = ask(port, QUERY, tmp_path)
    identifier = answer.identifier
    # The kanji descriptions do not fit ISO_IR 100: the profile's first set that holds them.
    assert list(identifier.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    step = identifier.ScheduledProcedureStepSequence[0]
    if client == "findscu":  # dcmjs decodes no ISO 2022 IR 87 text (support/worklist_clients.py)
        assert identifier.RequestedProcedureDescription == "胸部単純撮影"  # 6 characters: within 10
        assert step.ScheduledProcedureStepDescription == "胸部単純"  # cut at 4
    assert identifier.RequestedProcedurePriority == "ROUTINE"  # never asked, always sent
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"


def test_other_stations_get_the_standard_answer(
    request: pytest.FixtureRequest, pool: BrokerPool, tmp_path: Path
) -> None:
    port = pool.get(request, "sqlite", PROFILE).dicom.port
    [answer] = findscu(port, [], tmp_path, query=as_dataset(QUERY), aet="CT01")
    assert str(answer.PatientName) == "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert "RequestedProcedurePriority" not in answer


def test_the_same_query_from_the_station_and_another_in_turn_gets_each_its_answer(
    request: pytest.FixtureRequest, pool: BrokerPool, tmp_path: Path
) -> None:
    """The same identifier bytes, read once per calling AE (dicom/mwl_scp.py
    `FindRequests`): the station's quirks never reach the other AE, nor the other
    way round, however they alternate."""
    port = pool.get(request, "sqlite", PROFILE).dicom.port
    for turn, aet in enumerate(("MODALITY1", "CT01", "MODALITY1", "CT01")):
        [answer] = findscu(port, [], tmp_path / str(turn), query=as_dataset(QUERY), aet=aet)
        assert ("RequestedProcedurePriority" in answer) == (aet == "MODALITY1")
        charsets = answer.SpecificCharacterSet
        assert (list(charsets) if aet == "MODALITY1" else charsets) == (
            ["", "ISO 2022 IR 87"] if aet == "MODALITY1" else "ISO_IR 192"
        )


def test_a_quirk_naming_an_unknown_key_or_set_stops_start_up(tmp_path: Path) -> None:
    for stations in ("{X: {always_return: [NoSuchKeyword]}}", "{X: {character_set: ISO_IR 999}}"):
        path = tmp_path / "bad.yaml"
        path.write_text(f"name: bad\nextends: ihe-swf\ndicom: {{stations: {stations}}}\n")
        with pytest.raises(ProfileError):
            load_profile(str(path))
