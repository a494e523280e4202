"""HL7 messages the mapping refuses (broker/mapping/hl7_in.py): InvalidInput names the
field (it becomes ERR-2 / ERR-1 of the AE), UnsupportedMessage becomes an AR (table 0357
code 200)."""

from __future__ import annotations

import hl7
import pytest

from broker.domain.errors import InvalidInput
from broker.errors import UnsupportedMessage
from broker.mapping.hl7_in import interpret
from broker.mapping.profile import load_profile

SWF = load_profile("ihe-swf")
PID = "PID|1||PAT001^^^HOSPITAL||DOE^JOHN^Q||19700101|M"
ORC_NW = "ORC|NW|PO1001^RIS|FO1001||SC||^^^20261123100000^^R"


def seg(name: str, **fields: str) -> str:
    """A segment from `f<n>=value` keyword arguments, so field numbers are explicit."""
    last = max((int(k[1:]) for k in fields), default=0)
    return "|".join([name, *(fields.get(f"f{n}", "") for n in range(1, last + 1))])


def msh(message_type: str, version: str = "2.3.1") -> str:
    return f"MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123081000||{message_type}|MSG0001|P|{version}"


def parse(*segments: str) -> hl7.Message:
    return hl7.parse("\r".join(segments))


def test_missing_pid3_is_invalid_input_at_pid_3_rad_1() -> None:
    pid = seg("PID", f1="1", f3="^^^HOSPITAL", f5="DOE^JOHN")
    with pytest.raises(InvalidInput) as info:
        interpret(parse(msh("ADT^A04"), pid), SWF)
    assert info.value.location == "PID-3.1"
    assert "required" in info.value.reason


def test_missing_obr24_is_invalid_input_at_obr_24_rad_2() -> None:
    obr = seg("OBR", f1="1", f2="PO1001^RIS", f27="^^^20261123100000")
    with pytest.raises(InvalidInput) as info:
        interpret(parse(msh("ORM^O01"), PID, ORC_NW, obr), SWF)
    assert info.value.location == "OBR-24"
    assert "required" in info.value.reason


def test_bad_tq1_start_is_invalid_input_at_tq1_7_rad_2_v25() -> None:
    orc = seg("ORC", f1="NW", f2="PO1^RIS")
    with pytest.raises(InvalidInput) as info:
        interpret(
            parse(msh("ORM^O01", "2.5"), PID, orc, seg("TQ1", f1="1", f7="2026112X"), seg("OBR", f1="1", f24="CT")), SWF
        )
    assert info.value.location == "TQ1-7.1"
    assert "2026112X" in info.value.reason


def test_bad_obr27_start_is_invalid_input_at_obr_27_4_rad_2_v231() -> None:
    orc = seg("ORC", f1="NW", f2="PO1^RIS")
    obr = seg("OBR", f1="1", f24="CT", f27="^^^2026112X")
    with pytest.raises(InvalidInput) as info:
        interpret(parse(msh("ORM^O01"), PID, orc, obr), SWF)
    assert info.value.location == "OBR-27.4"


def test_unsupported_order_control_is_invalid_input_at_orc_1_rad_2() -> None:
    with pytest.raises(InvalidInput) as info:
        interpret(parse(msh("ORM^O01"), PID, seg("ORC", f1="SC", f2="PO1^RIS")), SWF)
    assert info.value.location == "ORC-1"


def test_orm_without_orc_is_invalid_input_rad_2() -> None:
    with pytest.raises(InvalidInput) as info:
        interpret(parse(msh("ORM^O01"), PID), SWF)
    assert info.value.location == "ORC"


@pytest.mark.parametrize("mtype", ["ORU^R01", "SIU^S12", "ADT^A99", "MDM^T02"])
def test_unsupported_message_type_is_refused_hl7_table_0357_200(mtype: str) -> None:
    with pytest.raises(UnsupportedMessage) as info:
        interpret(parse(msh(mtype), PID), SWF)
    assert str(info.value) == mtype
