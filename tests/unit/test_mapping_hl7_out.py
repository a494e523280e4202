"""Domain → HL7 text (broker/mapping/hl7_out.py): the segment writer and the RAD-3
status message (ORM^O01, ORC-1 SC, ORC-5 order status) for both profiles."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from broker.domain.model import (
    Code,
    Order,
    Patient,
    PerformedStep,
    PersonName,
    PpsStatus,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
    StepStatus,
)
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier, Hl7Writer, escape, name_repetitions
from broker.mapping.profile import Profile, load_profile

SWF = load_profile("ihe-swf")
JAHIS = load_profile("jahis")
AT = datetime(2026, 11, 23, 10, 30, 15)
RIS = Addressee("ris")
segment = Hl7Writer().segment


def _change(status: StepStatus, name: PersonName | None = None) -> StatusChange:
    step = ScheduledStep("SPS1001", "CT", station_ae="CT01", start=datetime(2026, 11, 23, 10, 0))
    rp = RequestedProcedure(
        "RP1001", "1.2.392.1", description="CT Chest", code=Code("CTCHEST", "LOCAL", "CT Chest"), steps=[step]
    )
    patient = Patient(
        "PAT001", "HOSPITAL", name or PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう"), "19700101", "M"
    )
    order = Order(
        "PO1001", "FO1001", "ACC1001", patient, placer_application="RIS", procedures=[rp], placer_facility="HOSPITAL"
    )
    return StatusChange(order, step, status, AT)


def _fields(text: str) -> dict[str, list[str]]:
    assert text.endswith("\r")
    return {line[:3]: line.split("|") for line in text.rstrip("\r").split("\r")}


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("|", "\\F\\"),
        ("^", "\\S\\"),
        ("&", "\\T\\"),
        ("~", "\\R\\"),
        ("\\", "\\E\\"),
        ("A|B^C&D~E\\F", "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F"),
        ("\\F\\", "\\E\\F\\E\\"),  # an escape-looking text is escaped, not kept
        ("山田 太郎", "山田 太郎"),
    ],
)
def test_escape_all_five_delimiters_hl7_2_7_4(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_segment_writer_components_repetitions_and_trailing_empties_hl7_2_5() -> None:
    assert segment("OBR", "1", ["PO1", "RIS"], "", "", "") == "OBR|1|PO1^RIS"
    assert segment("PID", "1", "", [["A", "B", ""], ["C", "", "", "I"]]) == "PID|1||A^B~C^^^I"
    assert segment("NTE", "1", "", "a|b") == "NTE|1||a\\F\\b"


def test_name_repetitions_xpn8_codes_ps3_5_6_2_jahis() -> None:
    name = PersonName("Yamada^Tarou^^Dr^Jr", "山田^太郎", "")
    codes = {"alphabetic": "A", "ideographic": "I", "phonetic": "P"}
    assert name_repetitions(name, codes) == [
        ["Yamada", "Tarou", "", "Jr", "Dr", "", "L", "A"],  # PN prefix^suffix → XPN suffix^prefix
        ["山田", "太郎", "", "", "", "", "L", "I"],
    ]


@pytest.mark.parametrize(
    ("status", "orc5"), [(StepStatus.STARTED, "IP"), (StepStatus.COMPLETED, "CM"), (StepStatus.DISCONTINUED, "DC")]
)
def test_status_message_orm_o01_sc_with_orc5_ihe_swf_rad_3(status: StepStatus, orc5: str) -> None:
    [message] = Hl7StatusNotifier(SWF, RIS).messages_for(_change(status))
    assert message.destination == "ris"
    assert message.ordering_key == "RIS|PO1001"
    seg = _fields(message.payload.decode("utf-8"))
    assert list(seg) == ["MSH", "PID", "ORC", "OBR"]
    msh = seg["MSH"]
    assert msh[1:6] == ["^~\\&", "BROKER", "RADIOLOGY", "RIS", "HOSPITAL"]
    assert msh[6] == "20261123103015"
    assert (msh[8], msh[10], msh[11], msh[17]) == ("ORM^O01^ORM_O01", "P", "2.3.1", "UNICODE UTF-8")
    assert len(msh) == 18  # no MSH-20 for ihe-swf
    assert seg["ORC"][:6] == ["ORC", "SC", "PO1001^RIS", "FO1001", "", orc5]
    obr = seg["OBR"]
    assert obr[1:5] == ["1", "PO1001^RIS", "FO1001", "CTCHEST^CT Chest^LOCAL"]
    assert (obr[18], obr[19], obr[20], obr[24]) == ("ACC1001", "RP1001", "SPS1001", "CT")
    pid = seg["PID"]
    assert pid[3] == "PAT001^^^HOSPITAL"
    assert pid[5] == "Yamada^Tarou^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P"
    assert (pid[7], pid[8]) == ("19700101", "M")


@pytest.mark.parametrize("status", [StepStatus.SCHEDULED, StepStatus.CANCELLED])
def test_no_status_message_for_statuses_without_orc5_code_rad_3(status: StepStatus) -> None:
    assert Hl7StatusNotifier(SWF, RIS).messages_for(_change(status)) == []


def test_control_ids_differ_between_messages_hl7_2_15_9_10() -> None:
    notifier = Hl7StatusNotifier(SWF, RIS)
    ids = {_fields(notifier.messages_for(_change(StepStatus.STARTED))[0].payload.decode())["MSH"][9] for _ in range(5)}
    assert len(ids) == 5
    assert all(0 < len(i) <= 20 for i in ids)


def test_status_message_escapes_delimiters_in_values_hl7_2_7() -> None:
    change = _change(StepStatus.COMPLETED, PersonName("O|BRIEN^ANN&MARY"))
    pid = _fields(Hl7StatusNotifier(SWF, RIS).messages_for(change)[0].payload.decode())["PID"]
    assert pid[5] == "O\\F\\BRIEN^ANN\\T\\MARY^^^^^L^A"


@pytest.mark.parametrize(
    ("status", "orc5"), [(StepStatus.STARTED, "IP"), (StepStatus.COMPLETED, "CM"), (StepStatus.DISCONTINUED, "DC")]
)
def test_jahis_status_message_is_iso_2022_jp_with_msh18_msh20_jahis(status: StepStatus, orc5: str) -> None:
    [message] = Hl7StatusNotifier(JAHIS, RIS).messages_for(_change(status))
    payload = message.payload
    assert payload.isascii()  # 7-bit ISO-2022-JP, no UTF-8
    # kanji and kana in JIS X 0208 between ESC $ B and ESC ( B, delimiters outside
    assert (
        b"||Yamada^Tarou^^^^^L^A~\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B^^^^^L^I~\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B^^^^^L^P|"
        in payload
    )
    seg = _fields(payload.decode("iso2022_jp"))
    msh = seg["MSH"]
    assert msh[11] == "2.5"  # MSH-12
    assert msh[17] == "~ISO IR87"  # MSH-18: first repetition ASCII default, then ISO IR87
    assert msh[18] == ""  # MSH-19
    assert msh[19] == "ISO 2022-1994"  # MSH-20
    assert seg["ORC"][1] == "SC"
    assert seg["ORC"][5] == orc5
    assert seg["PID"][5] == "Yamada^Tarou^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P"


def test_jahis_msh_itself_is_plain_ascii_jahis() -> None:
    [message] = Hl7StatusNotifier(JAHIS, RIS).messages_for(_change(StepStatus.COMPLETED))
    first_segment = message.payload.split(b"\r", 1)[0]
    assert b"\x1b" not in first_segment
    assert first_segment.startswith(b"MSH|^~\\&|BROKER|RADIOLOGY|RIS|HOSPITAL|20261123103015||ORM^O01^ORM_O01|")


def test_status_message_without_procedure_code_uses_description_rad_3() -> None:
    change = _change(StepStatus.STARTED)
    change.order.procedures[0].code = None
    obr = _fields(Hl7StatusNotifier(SWF, RIS).messages_for(change)[0].payload.decode())["OBR"]
    assert obr[4] == "CT Chest"


def test_performed_series_as_obx_when_the_profile_asks_issue_6() -> None:
    series = [{"0020000E": {"vr": "UI", "Value": [uid]}} for uid in ("1.2.3.4", "1.2.3.5")]
    record = {"00400340": {"vr": "SQ", "Value": series}}
    pps = PerformedStep("1.2.9", PpsStatus.COMPLETED, [], json.dumps(record), "CT01")
    asking = Profile.model_validate(
        {**SWF.model_dump(), "status_out": {**SWF.status_out.model_dump(), "performed_series": True}}
    )
    change = replace(_change(StepStatus.COMPLETED), performed=pps)
    [message] = Hl7StatusNotifier(asking, RIS).messages_for(change)
    obx = [line for line in message.payload.decode().split("\r") if line.startswith("OBX")]
    assert obx == [
        "OBX|1|ST|113014^DICOM Series^DCM|1|1.2.3.4||||||F",
        "OBX|2|ST|113014^DICOM Series^DCM|2|1.2.3.5||||||F",
    ]
    [plain] = Hl7StatusNotifier(SWF, RIS).messages_for(change)
    assert b"OBX" not in plain.payload


def test_control_characters_dropped_when_the_profile_says_hl7_segment_injection() -> None:
    dropping = Profile.model_validate({**SWF.model_dump(), "hl7_out": {"control_characters": "drop"}})
    change = _change(StepStatus.COMPLETED, PersonName("O\rPID|1^ANN\n"))
    [hexed] = Hl7StatusNotifier(SWF, RIS).messages_for(change)
    [dropped] = Hl7StatusNotifier(dropping, RIS).messages_for(change)
    assert _fields(hexed.payload.decode())["PID"][5] == "O\\X0D\\PID\\F\\1^ANN\\X0A\\^^^^^L^A"
    assert _fields(dropped.payload.decode())["PID"][5] == "OPID\\F\\1^ANN^^^^^L^A"


def test_text_an_iso_2022_jp_message_cannot_carry_is_written_as_question_mark_jahis() -> None:
    """A Latin letter or a bidi override has no JIS X 0208 code: the status still goes."""
    [message] = Hl7StatusNotifier(JAHIS, RIS).messages_for(
        _change(StepStatus.STARTED, PersonName("Ren\u00e9e\u202e^A"))
    )
    assert _fields(message.payload.decode("iso2022_jp"))["PID"][5].startswith("Ren?e?^A^")
