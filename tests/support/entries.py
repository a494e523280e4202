"""A worklist entry built by hand (no database), for tests of matching and answers."""

from __future__ import annotations

from datetime import datetime

from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.domain.worklist import WorklistEntry

#: PS3.5 H.3.1's example name.
YAMADA = PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう")


def worklist_entry(name: PersonName = YAMADA) -> WorklistEntry:
    step = ScheduledStep(
        "SPS1001",
        "CT",
        station_ae="CT01",
        station_name="CT ROOM 1",
        start=datetime(2026, 11, 23, 10, 0),
        description="CT Chest",
        protocol_codes=[Code("CTCHEST", "LOCAL", "CT Chest")],
    )
    rp = RequestedProcedure(
        "RP1001",
        "1.2.392.1",
        description="CT Chest",
        code=Code("CTCHEST", "LOCAL", "CT Chest"),
        priority="R",
        steps=[step],
    )
    patient = Patient("PAT001", "HOSPITAL", name, "19700101", "M")
    order = Order("PO1001", "FO1001", "ACC1001", patient, referring_physician="WELBY^MARCUS", procedures=[rp])
    return WorklistEntry.of(order, rp, step)
