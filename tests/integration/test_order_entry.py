"""Orders without HL7 (#18 item 2): `POST/PUT/DELETE /api/orders` go through the Order
Filler like an HL7 order. The order is found by DCMTK findscu, the Image Manager gets
RAD-4 then RAD-13 (NW, XO, CA), the RIS hears of each (RAD-3 SN, XO, OC) before the
order's status, each change is an Order Record audit naming the token, and bad input is
refused with the field named (422), a read token with 403."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from broker.app import Broker
from broker.store import tables as t
from support.audit import event_key, valid_message
from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import n_create
from support.net import free_port
from support.recorder import settled
from support.web import ADMIN_TOKEN, READ_TOKEN, client, web_broker, web_port

ORDER: dict[str, Any] = {
    "patient": {
        "patient_id": "HAND001",
        "name": "SATO^HANAKO=佐藤^花子=サトウ^ハナコ",
        "birth_date": "19800402",
        "sex": "F",
    },
    "modality": "CT",
    "scheduled_start": "2026-12-03T14:30:00",
    "procedure_code": {"value": "CTHEAD", "scheme": "LOCAL", "meaning": "CT head"},
    "priority": "R",
}
FIND_CT01 = ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261203",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
             "PatientName", "PatientID", "AccessionNumber", "SpecificCharacterSet=ISO_IR 192"]  # fmt: skip


@pytest.fixture
def image_manager() -> Iterator[RisListener]:
    listener = RisListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture
def broker(database_url: str, ris: RisListener, image_manager: RisListener) -> Iterator[Broker]:
    pacs = {"name": "pacs", "host": "127.0.0.1", "port": image_manager.port}
    with web_broker(ris.port, database_url, image_managers=[pacs], audit={"enabled": True}) as running:
        yield running


def _order_audits(broker: Broker) -> list[tuple[str, str]]:
    """(EventActionCode, requestor UserID) of each Order Record audit message."""
    with broker.engine.connect() as conn:
        payloads = conn.execute(
            select(t.outbox.c.payload).where(t.outbox.c.destination == "audit").order_by(t.outbox.c.id)
        ).scalars()
        roots = [valid_message(p[p.index(b"<?xml") :]) for p in payloads]
    return [(event_key(r)[1], _requestor(r)) for r in roots if event_key(r)[0] == "110109"]


def _requestor(root: etree._Element) -> str:
    return next(str(p.get("UserID")) for p in root.iter("ActiveParticipant") if p.get("UserIsRequestor") == "true")


def test_order_created_changed_cancelled_through_the_order_filler(
    broker: Broker, ris: RisListener, image_manager: RisListener, tmp_path: Path
) -> None:
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        created = admin.post("/api/orders", json=ORDER)
        assert created.status_code == 201, created.text
        order = created.json()
        accession = order["accession_number"]
        assert accession.startswith("A") and order["filler_order_number"] == accession
        assert (order["placer_order_number"], order["placer_application"]) == (accession, "BROKER")
        [procedure] = order["procedures"]
        assert procedure["study_instance_uid"].startswith("1.2.392.200036.9999.7.")
        assert procedure["steps"][0]["station_ae"] == "CT01"  # the profile's station for CT

        [found] = findscu(broker.dicom.port, FIND_CT01, tmp_path)
        assert (found.AccessionNumber, found.PatientID) == (accession, "HAND001")
        assert str(found.PatientName) == "SATO^HANAKO=佐藤^花子=サトウ^ハナコ"
        assert found.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime.startswith("1430")

        changed = admin.put(f"/api/orders/{accession}", json={"scheduled_start": "2026-12-03T16:00:00"})
        assert changed.status_code == 200, changed.text
        [found] = findscu(broker.dicom.port, FIND_CT01, tmp_path)
        assert found.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime.startswith("1600")

        second = admin.post("/api/orders", json={**ORDER, "patient": {"patient_id": "HAND001"}}).json()
        cancelled = admin.delete(f"/api/orders/{accession}")
        assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
        assert [f.AccessionNumber for f in findscu(broker.dicom.port, FIND_CT01, tmp_path)] == [
            second["accession_number"]
        ]
        assert second["patient"]["name"]["ideographic"] == "佐藤^花子"  # the known patient, unchanged

    nw, xo, nw2, ca = image_manager.wait_for(4)
    assert [segment(m, "ORC")[1] for m in (nw, xo, nw2, ca)] == ["NW", "XO", "NW", "CA"]
    assert segment(nw, "OBR")[18] == accession and segment(nw, "ORC")[2] == f"{accession}^BROKER"

    step = second["procedures"][0]
    started = n_create(step["steps"][0]["sps_id"], second["accession_number"], step["requested_procedure_id"],
                       step["study_instance_uid"], PatientID="HAND001", PatientName="SATO^HANAKO")  # fmt: skip
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=started)["status"] == 0
    # RAD-3 to the (strict) RIS, in order: each order made here (SN, for the RIS to
    # number), its change and cancel, then the status of the second one.
    received = ris.wait_for(5)
    sn, xo, oc = (m for m in received if segment(m, "ORC")[3] == accession)  # in order per order
    sn2, status = (m for m in received if segment(m, "ORC")[3] == second["accession_number"])
    assert [segment(m, "ORC")[1] for m in (sn, xo, oc, sn2, status)] == ["SN", "XO", "OC", "SN", "SC"]
    assert [segment(m, "ORC")[2] for m in received] == [""] * 5  # the RIS's number, not the broker's
    assert segment(sn, "PID")[5] == "SATO^HANAKO^^^^^L^A~佐藤^花子^^^^^L^I~サトウ^ハナコ^^^^^L^P"
    assert segment(sn, "OBR")[18] == accession and segment(sn, "OBR")[24] == "CT"
    assert segment(status, "ORC")[5] == "IP" and segment(status, "OBR")[18] == second["accession_number"]

    audits = _order_audits(broker)
    assert audits == [("C", "web-api operator"), ("U", "web-api operator"), ("C", "web-api operator"),
                      ("D", "web-api operator")]  # fmt: skip


def test_a_ris_order_cancelled_at_the_console_is_told_to_the_ris_by_its_own_number(
    broker: Broker, ris: RisListener
) -> None:
    """RAD-3 OC: the RIS placed the order (HL7 NW), the broker's operator cancels it."""
    [ack] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    assert ack_code(ack) == "AA"
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        assert admin.delete("/api/orders/ACC1001").status_code == 200
    [oc] = ris.wait_for(1)
    assert segment(oc, "ORC")[1:6] == ["OC", "PO1001^RIS", "FO1001", "", "CA"]
    assert segment(oc, "MSH")[5] == "RIS" and segment(oc, "OBR")[18] == "ACC1001"


def test_the_ris_cancels_an_order_made_here_by_its_own_number_and_our_filler_number(
    broker: Broker, ris: RisListener, image_manager: RisListener
) -> None:
    """After SN the RIS holds the order under the number it gave in its NA; its CA names
    that number (ORC-2) and ours (ORC-3): the broker finds the order by ORC-3."""
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        accession = admin.post("/api/orders", json=ORDER).json()["accession_number"]
        [sn] = ris.wait_for(1)
        assert segment(sn, "ORC")[1:4] == ["SN", "", accession]
        ca = sample("rad-2-placer-order/orm_o01_ca.hl7").replace(
            b"ORC|CA|PO1002^RIS", f"ORC|CA|R777^RIS|{accession}".encode()
        )
        stranger = sample("rad-2-placer-order/orm_o01_ca.hl7", ORM0003="ORM0004").replace(
            b"ORC|CA|PO1002^RIS", b"ORC|CA|R778^RIS|A99999999"
        )
        [refused, cancelled] = send(broker.hl7.port, stranger, ca)
        assert (ack_code(refused), ack_code(cancelled)) == ("AE", "AA")
        assert admin.get(f"/api/orders/{accession}").json()["procedures"][0]["steps"][0]["status"] == "CANCELLED"
    nw, ca_out = image_manager.wait_for(2)
    assert [segment(m, "ORC")[1] for m in (nw, ca_out)] == ["NW", "CA"]


def _assigned(broker: Broker, accession: str) -> tuple[str, str]:
    """The placer number kept for the order, once the outbox took the RIS's answer."""
    o = t.orders.c
    query = select(o.assigned_placer_number, o.assigned_placer_application).where(o.accession_number == accession)

    def read() -> tuple[str, str]:
        with broker.engine.connect() as conn:
            row = conn.execute(query).one()
        return row[0], row[1]

    return settled(read, lambda found: found[0] != "")


def test_the_ris_number_for_an_order_made_here_names_it_both_ways(
    broker: Broker, ris: RisListener, image_manager: RisListener
) -> None:
    """RAD-3: the RIS answers the SN with ORR^O02 NA and its own number. The broker keeps
    it: its change (XO) names the order by it (ORC-2, with ORC-3 its own), and the
    RIS's cancel that names only that number (no ORC-3) is applied to the order."""
    ris.numbering = "R"
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        accession = admin.post("/api/orders", json=ORDER).json()["accession_number"]
        [sn] = ris.wait_for(1)
        assert segment(sn, "ORC")[1:4] == ["SN", "", accession]
        assert _assigned(broker, accession) == ("R1", "RIS")
        shown = admin.get(f"/api/orders/{accession}").json()
        assert (shown["assigned_placer_number"], shown["assigned_placer_application"]) == ("R1", "RIS")
        changed = admin.put(f"/api/orders/{accession}", json={"scheduled_start": "2026-12-03T15:00:00"})
        assert changed.status_code == 200, changed.text
        _, xo = ris.wait_for(2)
        assert segment(xo, "ORC")[1:4] == ["XO", "R1^RIS", accession]
    ca = sample("rad-2-placer-order/orm_o01_ca.hl7").replace(b"PO1002^RIS", b"R1^RIS")
    [cancelled] = send(broker.hl7.port, ca)
    assert ack_code(cancelled) == "AA"
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        assert admin.get(f"/api/orders/{accession}").json()["procedures"][0]["steps"][0]["status"] == "CANCELLED"


def test_a_ris_order_numbered_alike_is_never_found_by_orc3_for_another_placer_number(broker: Broker) -> None:
    """Only orders made at the broker are found by ORC-3: a RIS's order whose placer and
    filler numbers are equal stays out of reach of a CA naming another placer number."""
    nw = sample("rad-2-placer-order/orm_o01_nw.hl7").replace(b"PO1001^RIS|FO1001", b"SAME1^RIS|SAME1")
    ca = sample("rad-2-placer-order/orm_o01_ca.hl7").replace(b"ORC|CA|PO1002^RIS", b"ORC|CA|R779^RIS|SAME1")
    placed, cancelled = send(broker.hl7.port, nw, ca)
    assert (ack_code(placed), ack_code(cancelled)) == ("AA", "AE")
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        assert admin.get("/api/orders/ACC1001").json()["procedures"][0]["steps"][0]["status"] == "SCHEDULED"


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"modality": "C T!"}, "modality"),
    ({"patient": {"patient_id": "P1", "birth_date": "19701340"}}, "patient.birth_date"),
    ({"patient": {"patient_id": "P1", "name": "A^B^C^D^E^F"}}, "patient.name"),
    ({"priority": "X"}, "priority"),
    ({"station_ae": "ステーション"}, "station_ae"),
    ({"scheduled_start": "tomorrow"}, "scheduled_start"),
    ({"patient": {"name": "NO^ID"}}, "patient_id"),
]


def test_bad_input_is_422_naming_the_field(broker: Broker) -> None:
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        for change, field in BAD_INPUT:
            refused = admin.post("/api/orders", json={**ORDER, **change})
            assert refused.status_code == 422, change
            assert field in str(refused.json()["detail"]), refused.text
        assert admin.get("/api/orders").json() == []  # nothing applied


def test_refusals_read_token_unknown_order_identifier_in_use(broker: Broker) -> None:
    with client(web_port(broker), READ_TOKEN) as reader:
        assert reader.post("/api/orders", json=ORDER).status_code == 403
        assert reader.put("/api/orders/A1", json={}).status_code == 403
        assert reader.delete("/api/orders/A1").status_code == 403
        assert reader.get("/api/order-choices").json()["modalities"]["CT"] == "CT01"
    with client(web_port(broker), ADMIN_TOKEN) as admin:
        assert admin.put("/api/orders/NOSUCH", json={}).status_code == 404
        assert admin.delete("/api/orders/NOSUCH").status_code == 404
        assert admin.post("/api/orders", json={**ORDER, "accession_number": "HANDACC1"}).status_code == 201
        taken = admin.post("/api/orders", json={**ORDER, "accession_number": "HANDACC1"})
        assert taken.status_code == 409 and "accession number" in taken.json()["detail"]
        assert len(admin.get("/api/orders").json()) == 1


def test_procedure_codes_come_from_the_profile(tmp_path: Path, ris: RisListener) -> None:
    """With `codes.require_mapped`, only the profile's codes are offered and taken; the
    worklist shows the mapped (JJ1017) code, as for an HL7 order."""
    profile = tmp_path / "site.yaml"
    profile.write_text(
        "name: site\nextends: ihe-swf\ncodes:\n  require_mapped: true\n  map:\n    LOCAL:\n"
        "      CTHEAD: {value: GX.10.00, scheme: JJ1017, meaning: 頭部CT}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'codes.db'}"
    with web_broker(ris.port, url, profile=str(profile)) as broker, client(web_port(broker), ADMIN_TOKEN) as admin:
        choices = admin.get("/api/order-choices").json()
        unknown = admin.post("/api/orders", json={**ORDER, "procedure_code": {"value": "XRAY", "scheme": "LOCAL"}})
        placed = admin.post("/api/orders", json=ORDER).json()
    assert choices["require_mapped_code"] is True
    assert choices["procedure_codes"] == [
        {"scheme": "LOCAL", "value": "CTHEAD", "shown_value": "GX.10.00", "shown_scheme": "JJ1017", "meaning": "頭部CT"}
    ]
    assert (
        unknown.status_code == 422 and unknown.json()["detail"] == "procedure_code: procedure code 'XRAY' is not known"
    )
    assert placed["procedures"][0]["code"] == {"value": "GX.10.00", "scheme": "JJ1017", "meaning": "頭部CT"}


def test_openapi_describes_order_entry(broker: Broker) -> None:
    with client(web_port(broker), None) as anonymous:
        schema = anonymous.get("/openapi.json").json()
    orders, one = schema["paths"]["/api/orders"], schema["paths"]["/api/orders/{accession_number}"]
    assert {"get", "post"} <= set(orders) and {"get", "put", "delete"} <= set(one)
    assert orders["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OrderIn")
    assert one["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OrderChangeIn")
    assert {"403", "409", "422"} <= set(orders["post"]["responses"])
    assert {"patient", "modality", "scheduled_start"} == set(schema["components"]["schemas"]["OrderIn"]["required"])
    assert "/desk" not in schema["paths"] and "/orders/new" not in schema["paths"]  # the page is not the API
