"""RAD-4 Procedure Scheduled and RAD-13 Procedure Update reach a real MLLP Image
Manager through the outbox, in order, in the profile's form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from broker.app import Broker
from broker.store import tables as t
from support.brokers import make_config
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.net import free_port


@pytest.fixture
def image_manager() -> Iterator[RisListener]:
    listener = RisListener(free_port()).start()
    yield listener
    listener.stop()


def _broker(database_url: str, ris: RisListener, image_manager: RisListener, profile: str) -> Broker:
    pacs = {"name": "pacs", "host": "127.0.0.1", "port": image_manager.port}
    broker = Broker(make_config(ris.port, database_url=database_url, profile=profile, image_managers=[pacs]))
    broker.start()
    return broker


def test_rad4_then_rad13_orm_with_zds_ihe_swf(database_url: str, ris: RisListener, image_manager: RisListener) -> None:
    broker = _broker(database_url, ris, image_manager, "ihe-swf")
    try:
        acks = send(
            broker.hl7.port,
            sample("rad-2-placer-order/orm_o01_nw.hl7"),
            sample("rad-2-placer-order/orm_o01_xo.hl7"),
            sample("rad-2-placer-order/orm_o01_dc.hl7"),
        )
        assert [ack_code(a) for a in acks] == ["AA", "AA", "AA"]
        scheduled, changed, stopped = image_manager.wait_for(3)
    finally:
        broker.stop()
    assert segment(scheduled, "MSH")[9] == "ORM^O01^ORM_O01"
    assert [segment(m, "ORC")[1] for m in (scheduled, changed, stopped)] == ["NW", "XO", "DC"]
    assert [segment(m, "ORC")[5] for m in (scheduled, changed, stopped)] == ["SC", "SC", "DC"]
    obr = segment(scheduled, "OBR")
    assert (obr[18], obr[19], obr[20], obr[24]) == ("ACC1001", "RP1001", "SPS1001", "CT")
    assert obr[27] == "^^^20261123100000^^R"  # start, priority
    assert segment(changed, "OBR")[27] == "^^^20261123143000^^R"
    assert segment(scheduled, "ZDS")[1] == "1.2.392.200036.9999.1.1001^BROKER^Application^DICOM"
    assert _queued_for(broker, "ris") == 0  # the RIS gets status (RAD-3), not procedure messages
    assert ris.received == []


def test_rad4_omi_o23_ipc_per_step_jahis_iso2022jp(
    database_url: str, ris: RisListener, image_manager: RisListener
) -> None:
    broker = _broker(database_url, ris, image_manager, "jahis")
    try:
        [ack] = send(broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"))
        assert ack_code(ack) == "AA"
        [scheduled] = image_manager.wait_for(1)
    finally:
        broker.stop()
    msh = segment(scheduled, "MSH", "iso2022_jp")
    assert (msh[9], msh[12], msh[18], msh[20]) == ("OMI^O23^OMI_O23", "2.5", "~ISO IR87", "ISO 2022-1994")
    assert "山田^太郎^^^^^L^I" in segment(scheduled, "PID", "iso2022_jp")[5]
    ipc = segment(scheduled, "IPC", "iso2022_jp")
    assert (ipc[1], ipc[2], ipc[4], ipc[5], ipc[9]) == ("JPACC0001", "JPRP0001", "JPSPS0001", "CR", "CR01")
    assert ipc[6] == "GX.01.00^胸部単純撮影^JJ1017"
    assert segment(scheduled, "TQ1", "iso2022_jp")[7] == "20261123093000"


def _queued_for(broker: Broker, destination: str) -> int:
    """Outbox rows for `destination`, in any state: none means none was or will be sent."""
    with broker.engine.connect() as conn:
        stmt = select(func.count()).where(t.outbox.c.destination == destination)
        return int(conn.execute(stmt).scalar_one())
