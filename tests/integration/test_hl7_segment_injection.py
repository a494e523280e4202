"""HL7 segment injection (issue #15, RELIABILITY O1): what a modality sends in MPPS
reaches the RIS as values, never as segments.

Every DICOM-sourced value the broker writes into RAD-3 goes through a real MPPS
N-CREATE / N-SET (pynetdicom SCU) carrying CR, LF, the five HL7 delimiters, NUL, ESC,
C1 and a bidi override: Performed Station AE Title (OBR-21), PPS Start Date/Time
(OBR-7), PPS End Date/Time (OBR-8) and the performed Series Instance UIDs (OBX-5, with
`status_out.performed_series`). Text fields round-trip; a date/time that is not a
DICOM DA/TM is not written into the DTM field at all. Series descriptions, operator names and the other MPPS
attributes are kept with the MPPS but written into no HL7 message. The RIS stand-in's
messages must hold exactly the segments the broker meant, each hostile value read back
unchanged, and pass the structure check (tests/support/hl7_structure.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hl7
import pytest
from pydicom import config as pydicom_config
from pydicom.uid import generate_uid

from broker.app import Broker
from support.brokers import make_config
from support.hl7_structure import problems
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import as_dataset, n_create, n_set_final
from support.net import free_port
from support.senders import MppsSender

STUDY = "1.2.392.200036.9999.1.1001"
#: What a hostile or broken modality may put in a value: a segment terminator followed
#: by a forged segment, the delimiters, NUL, ESC (an ISO 2022 switch), C1 and RLO.
#: AE is a default-repertoire VR: the RLO goes as the UTF-8 bytes a modality would send,
#: and is read back as the broker reads AE bytes (one character per byte, C1 among them).
STATION_BYTES = "C\rPID|^~\\&\n\x00\x1b\u202e".encode()  # 16 bytes: fits the AE column
STATION = STATION_BYTES.decode("latin-1")
#: What the broker keeps of it: NUL is DICOM padding (and PostgreSQL text cannot hold
#: it); the NUL in PPS End Time below goes through to the RIS instead.
STATION_KEPT = STATION.replace("\x00", "")
#: Not a DA/TM: OBR-7 (a DTM) is left empty rather than carry them.
START_DATE, START_TIME = "2026\r112", "10\nOBX|"
END_DATE, END_TIME = "20261123", "101500.25"
#: A backslash separates DICOM values (the AE above is two values, kept as sent: `a\b`).
SERIES = ["1.2.3\rZZZ|1", "1.2.4\n&~^|"]


@pytest.fixture
def lenient_pydicom() -> Iterator[None]:
    """The values break their VRs (AE, DA, TM, UI): pydicom's default is to warn and go
    on, which this suite turns into errors; a modality that sends them gets its MPPS
    accepted in production, so here too."""
    reading, writing = pydicom_config.settings.reading_validation_mode, pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    yield
    pydicom_config.settings.reading_validation_mode = reading
    pydicom_config.settings.writing_validation_mode = writing


@pytest.fixture(params=["ihe-swf", "jahis"])
def series_broker(
    database_url: str, ris: RisListener, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Broker]:
    profile = tmp_path / "site.yaml"
    profile.write_text(f"name: site\nextends: {request.param}\nstatus_out:\n  performed_series: true\n")
    broker = Broker(make_config(ris.port, database_url=database_url, profile=str(profile)))
    broker.start()
    yield broker
    broker.stop()


def _in_jis(text: str) -> str:
    """What an ISO-2022-JP message can carry of `text`: control characters as hex
    escapes, characters outside ASCII and JIS X 0208 as `?`."""
    return "".join(
        c if c < " " or "\x7f" <= c <= "\x9f" else c.encode("iso2022_jp", "replace").decode("iso2022_jp") for c in text
    )


def _value(message: hl7.Message, segment: hl7.Segment, field: int) -> str:
    return str(message.unescape(str(segment[field])))


def test_hl7_segment_injection_through_every_mpps_field_reaching_rad3(
    series_broker: Broker, ris: RisListener, lenient_pydicom: None
) -> None:
    assert ack_code(send(series_broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))[0]) == "AA"
    uid = generate_uid()
    create = n_create(
        "SPS1001",
        "ACC1001",
        "RP1001",
        STUDY,
        PerformedStationAETitle=STATION,  # written as latin-1: the UTF-8 bytes above
        PerformedProcedureStepStartDate=START_DATE,
        PerformedProcedureStepStartTime=START_TIME,
    )
    final = {
        **n_set_final(),
        "PerformedProcedureStepEndDate": END_DATE,
        "PerformedProcedureStepEndTime": END_TIME,
        "PerformedSeriesSequence": [
            {
                "SeriesInstanceUID": series,
                "SeriesDescription": "desc\rOBX|9",
                "OperatorsName": "EVIL\r^OP",
                "RetrieveAETitle": "PACS",
                "ReferencedImageSequence": [],
            }
            for series in SERIES
        ],
    }
    modality = MppsSender(series_broker.dicom.port)
    assert modality.create(uid, as_dataset(create))() == 0x0000
    assert modality.set(uid, as_dataset(final))() == 0x0000

    for raw in ris.wait_for(2):
        text = raw.decode("iso2022_jp" if b"ISO IR87" in raw else "utf-8")
        message = hl7.parse(text)
        names = [str(s[0]) for s in message]
        series = SERIES if _value(message, message.segment("ORC"), 5) == "CM" else []
        assert names == ["MSH", "PID", "ORC", "OBR", *["OBX"] * len(series)]
        assert text.count("\r") == len(names) and "\n" not in text
        obr = message.segment("OBR")
        assert _value(message, obr, 21) == (_in_jis(STATION_KEPT) if b"ISO IR87" in raw else STATION_KEPT)
        assert _value(message, obr, 7) == ""
        if series:
            assert _value(message, obr, 8) == "20261123101500"
            assert [_value(message, obx, 5) for obx in message.segments("OBX")] == SERIES
        assert problems(text) == []


#: An HL7 sender's escapes decode to `|`, `~` and `&` in the stored name: when the
#: broker writes the name again (RAD-4 to the Image Manager, RAD-3 to the RIS), they must
#: stay inside PID-5. (Escapes that decode to CR, LF or ESC are refused at intake, AE at
#: PID-5: no DICOM PN holds them; tests/unit/test_mapping_dicom_values.py.)
HOSTILE_FAMILY = "DOE\\F\\PID\\F\\1\\F\\\\F\\EVIL\\R\\\\T\\"
HOSTILE_FAMILY_DECODED = "DOE|PID|1||EVIL~&"


def test_hl7_segment_injection_through_hl7_sourced_values_and_answers(
    database_url: str, ris: RisListener, tmp_path: Path, lenient_pydicom: None
) -> None:
    """Also: MSH-5/MSH-6 from each destination's configuration, every message and the
    ORR^O02 answer well-formed for its version."""
    pacs = RisListener(free_port()).start()
    image_managers = [
        {"name": "pacs", "host": "127.0.0.1", "port": pacs.port, "receiving_application": "PACS",
         "receiving_facility": "IMAGING"},
    ]  # fmt: skip
    config = make_config(
        ris.port, database_url=database_url, image_managers=image_managers,
        ris={"host": "127.0.0.1", "port": ris.port, "timeout_seconds": 5, "receiving_application": "RISAPP"},
    )  # fmt: skip
    broker = Broker(config)
    broker.start()
    try:
        order = sample("rad-2-placer-order/orm_o01_nw.hl7").replace(b"DOE^JOHN", HOSTILE_FAMILY.encode() + b"^JOHN")
        [answer] = send(broker.hl7.port, order)
        uid = generate_uid()
        assert (
            MppsSender(broker.dicom.port).create(uid, as_dataset(n_create("SPS1001", "ACC1001", "RP1001", STUDY)))()
            == 0
        )
        [scheduled] = pacs.wait_for(1)
        [started] = ris.wait_for(1)
    finally:
        broker.stop()
        pacs.stop()
    assert ack_code(answer) == "AA"
    assert problems(answer.decode()) == []
    for raw, receiving in ((scheduled, ["PACS", "IMAGING"]), (started, ["RISAPP", "HOSPITAL"])):
        text = raw.decode()
        message = hl7.parse(text)
        assert [str(s[0]) for s in message].count("PID") == 1
        assert text.count("\r") == len(message) and "\n" not in text
        assert message.unescape(str(message.segment("PID")[5]).split("^")[0]) == HOSTILE_FAMILY_DECODED
        assert [str(message.segment("MSH")[n]) for n in (5, 6)] == receiving
        assert problems(text) == []
