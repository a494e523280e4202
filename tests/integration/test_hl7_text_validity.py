"""Text that contradicts its declared character set, or holds characters no value may
hold, is refused AE at intake with ERR naming the field; the raw message is kept
(#14 defects 4 and 5). Before, these were answered AA and reached the modality as
escape sequences and control characters."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from broker.app import Broker
from broker.store import tables as t
from support.hl7peer import ack_code, sample, segment, send

A04 = "rad-1-patient-registration/adt_a04.hl7"


def _a04(msh18: str, name: bytes) -> bytes:
    return sample(A04).replace(b"|P|2.3.1", f"|P|2.3.1||||||{msh18}".encode()).replace(b"DOE^JOHN^Q", name)


@pytest.mark.parametrize(
    ("msh18", "name"),
    [
        ("UNICODE UTF-8", "山田^太郎".encode("iso2022_jp")),
        ("", "山田^太郎".encode("iso2022_jp")),
        ("8859/1", "山田^太郎".encode("shift_jis")),
        ("UNICODE UTF-8", "DOE^JO\u202eHN".encode()),
        ("UNICODE UTF-8", b"DOE\x00^JOHN"),
        ("UNICODE UTF-8", "\ufeffDOE^JOHN".encode()),
    ],
    ids=["iso2022jp-as-utf8", "iso2022jp-undeclared", "sjis-as-latin1", "rlo", "nul", "bom"],
)
def test_text_invalid_in_its_declared_set_is_AE_at_pid_5_and_kept(broker: Broker, msh18: str, name: bytes) -> None:
    message = _a04(msh18, name)
    [reply] = send(broker.hl7.port, message)
    assert ack_code(reply) == "AE"
    assert segment(reply, "ERR")[1].startswith("PID^1^5^102&")
    assert "at position" in segment(reply, "MSA")[3]
    with broker.engine.connect() as conn:
        row = conn.execute(select(t.inbound_messages)).one()
        patients = conn.execute(select(func.count()).select_from(t.patients)).scalar_one()
    assert (row.answer, row.error_location, row.raw, patients) == ("AE", "PID-5", message, 0)
