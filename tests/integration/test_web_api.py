"""The REST API against a running broker, after real traffic (MLLP, DCMTK findscu,
dcmjs-dimse MPPS): every resource, the two roles, OpenAPI, and the body limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from support.dicompeer import mpps
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import n_create
from support.web import ADMIN_TOKEN, READ_TOKEN, client, metric, web_port
from support.web import web_broker as running

STUDY = "1.2.392.200036.9999.1.1001"


@pytest.fixture
def web_broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    with running(ris.port, database_url) as broker:
        yield broker


@pytest.fixture
def sqlite_web_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    """For what does not depend on the database backend (auth, OpenAPI, limits)."""
    with running(ris.port, f"sqlite:///{tmp_path / 'web.db'}") as broker:
        yield broker


def test_read_token_reads_admin_token_writes(sqlite_web_broker: Broker) -> None:
    port = web_port(sqlite_web_broker)
    with client(port, None) as anonymous:
        refused = anonymous.get("/api/orders")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/health").json() == {"status": "ok"}
        assert anonymous.get("/ready").json() == {"status": "ready"}
    with client(port, None, cookie=READ_TOKEN) as signed_in:
        assert signed_in.get("/api/orders").status_code == 200
    with client(port, None, cookie=ADMIN_TOKEN) as signed_in:  # a cookie never authorizes a write (no CSRF)
        assert signed_in.post("/api/outbox/requeue", json={"ids": []}).status_code == 401
    with client(port, "not-a-token-of-this-broker") as wrong:
        assert wrong.get("/api/orders").status_code == 401
    with client(port, READ_TOKEN) as reader:
        assert reader.get("/api/orders").status_code == 200
        assert reader.post("/api/outbox/requeue", json={"ids": [1]}).status_code == 403
        assert reader.post("/api/outbox/skip", json={"ids": [1]}).status_code == 403
        assert reader.post("/api/messages/1/replay").status_code == 403
        assert reader.post("/api/mpps/exceptions/1.2.3/reconcile", json={"accession_number": "A"}).status_code == 403
    with client(port, ADMIN_TOKEN) as admin:
        assert admin.post("/api/outbox/requeue", json={"ids": [1]}).json() == {"requeued": 0, "ids": []}
        assert admin.post("/api/outbox/skip", json={"ids": [1]}).json() == {"skipped": 0, "ids": []}


def test_openapi_served_with_every_resource(sqlite_web_broker: Broker) -> None:
    with client(web_port(sqlite_web_broker), None) as anonymous:
        schema = anonymous.get("/openapi.json").json()
        docs = anonymous.get("/docs")
    assert {
        "/api/patients", "/api/orders", "/api/orders/{accession_number}", "/api/steps", "/api/mpps",
        "/api/mpps/{uid}", "/api/mpps/exceptions", "/api/mpps/exceptions/{uid}/reconcile", "/api/messages",
        "/api/messages/{message_id}/replay", "/api/outbox", "/api/outbox/health", "/api/outbox/requeue",
        "/health", "/ready", "/metrics",
    } <= set(schema["paths"])  # fmt: skip
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/" not in schema["paths"]  # the page is not part of the API
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def test_large_or_compressed_bodies_refused_before_reading_s5(sqlite_web_broker: Broker) -> None:
    port = web_port(sqlite_web_broker)
    auth = f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    head = b"POST /api/outbox/requeue HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n" + auth
    declared_4_gib = _raw(port, head + b"Content-Length: 4294967296\r\n\r\n")  # and no body follows
    assert declared_4_gib.startswith(b"HTTP/1.1 413")
    chunk = b'{"ids": [' + b"1, " * 3000 + b"1]}"
    body = b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"
    chunked = _raw(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert chunked.startswith(b"HTTP/1.1 413")
    gzip = _raw(port, head + b"Content-Encoding: gzip\r\nContent-Length: 20\r\n\r\n" + b"\x1f\x8b" + b"\0" * 18)
    assert gzip.startswith(b"HTTP/1.1 415")
    with client(port, ADMIN_TOKEN) as admin:  # within the limit: served
        assert admin.post("/api/outbox/requeue", json={"ids": list(range(100))}).status_code == 200


def test_patients_orders_steps_mpps_and_reconcile(web_broker: Broker, tmp_path: Path) -> None:
    acks = send(
        web_broker.hl7.port,
        sample("rad-1-patient-registration/adt_a04.hl7"),
        sample("rad-2-placer-order/orm_o01_nw.hl7"),
    )
    assert [ack_code(a) for a in acks] == ["AA", "AA"]
    started = mpps(web_broker.dicom.port, "create", tmp_path, dataset=n_create("SPS1001", "ACC1001", "RP1001", STUDY))
    trauma = mpps(web_broker.dicom.port, "create", tmp_path, dataset=n_create("", "", "", "1.2.392.200036.9999.6.1"))
    linked_uid, trauma_uid = str(started["affectedSopInstanceUid"]), str(trauma["affectedSopInstanceUid"])

    with client(web_port(web_broker)) as reader:
        [patient] = reader.get("/api/patients", params={"patient_id": "PAT001"}).json()
        order = reader.get("/api/orders/ACC1001").json()
        missing = reader.get("/api/orders/NO-SUCH")
        [step] = reader.get("/api/steps", params={"day": "2026-11-23", "station_ae": "CT01"}).json()
        performed = {m["sop_instance_uid"]: m for m in reader.get("/api/mpps").json()}
        [exception] = reader.get("/api/mpps/exceptions").json()
        assert reader.get("/api/steps", params={"day": "2026-11-24"}).json() == []
    assert (patient["name"]["alphabetic"], patient["birth_date"], patient["sex"]) == ("DOE^JOHN^Q", "19700101", "M")
    assert order["patient"]["patient_id"] == "PAT001"
    [procedure] = order["procedures"]
    assert procedure["study_instance_uid"] == STUDY
    assert [(s["sps_id"], s["station_ae"], s["status"]) for s in procedure["steps"]] == [("SPS1001", "CT01", "STARTED")]
    assert missing.status_code == 404
    assert (step["sps_id"], step["status"], step["mpps_status"], step["accession_number"]) == (
        "SPS1001", "STARTED", "IN PROGRESS", "ACC1001",
    )  # fmt: skip
    assert step["patient_name"]["alphabetic"] == "DOE^JOHN^Q"
    assert performed[linked_uid]["linked_sps_ids"] == ["SPS1001"]
    assert performed[trauma_uid]["linked_sps_ids"] == []
    assert exception["sop_instance_uid"] == trauma_uid

    path = f"/api/mpps/exceptions/{trauma_uid}/reconcile"
    with client(web_port(web_broker), ADMIN_TOKEN) as admin:
        assert admin.post(path, json={"accession_number": "NO-SUCH"}).status_code == 404
        reconciled = admin.post(path, json={"accession_number": "ACC1001"})
        assert reconciled.status_code == 200, reconciled.text
        assert reconciled.json()["linked_sps_ids"] == ["SPS1001"]
        assert admin.get("/api/mpps/exceptions").json() == []
        assert admin.get(f"/api/mpps/{trauma_uid}").json()["status"] == "IN PROGRESS"
        assert admin.get("/api/mpps/1.2.3.4.5").status_code == 404


def test_refused_message_listed_and_replayed(web_broker: Broker) -> None:
    [refused] = send(web_broker.hl7.port, sample("rad-12-patient-update/adt_a08.hl7"))
    assert ack_code(refused) == "AE"
    with client(web_port(web_broker), ADMIN_TOKEN) as admin:
        [listed] = admin.get("/api/messages", params={"refused": True}).json()
        assert (listed["message_type"], listed["answer"], listed["error_code"]) == ("ADT^A08", "AE", "204")
        replay = f"/api/messages/{listed['id']}/replay"
        assert admin.post(replay).json()["answer"] == "AE"  # its patient is still unknown

        send(web_broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"))
        assert admin.post(replay).json() == {"id": listed["id"], "answer": "AA", "error_code": "", "error": ""}
        assert admin.post(replay).status_code == 409  # accepted now: never applied twice
        assert admin.post("/api/messages/999999/replay").status_code == 404
        assert admin.get("/api/messages", params={"refused": True}).json() == []
        assert len(admin.get("/api/messages").json()) == 2


def test_dead_letter_listed_then_requeued_and_sent(web_broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    ris.answer = "AE"  # the RIS refuses: the status message becomes a dead letter
    send(web_broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    mpps(web_broker.dicom.port, "create", tmp_path, dataset=n_create("SPS1001", "ACC1001", "RP1001", STUDY))
    ris.wait_for(1)
    with client(web_port(web_broker), ADMIN_TOKEN) as admin:
        [dead] = _eventually(lambda: admin.get("/api/outbox", params={"state": "dead"}).json())
        assert (dead["destination"], dead["ordering_key"] != "", dead["attempts"]) == ("ris", True, 1)
        assert (dead["answer_code"], dead["answer_error"]) == ("AE", "^^^207&Application internal error&HL70357")
        health = admin.get("/api/outbox/health").json()
        assert (health["depth"], health["dead"]) == (0, 1)
        assert metric(admin.get("/metrics").text, "broker_outbox_dead") == 1  # read from the database now

        ris.answer = "AA"  # fixed at the RIS
        assert admin.post("/api/outbox/requeue", json={"ids": [dead["id"]]}).json() == {
            "requeued": 1,
            "ids": [dead["id"]],
        }
        [sent] = _eventually(lambda: admin.get("/api/outbox", params={"state": "sent"}).json())
        assert sent["id"] == dead["id"]
        assert admin.get("/api/outbox", params={"state": "dead"}).json() == []
        assert admin.post("/api/outbox/skip", json={"ids": [dead["id"]]}).json() == {"skipped": 0, "ids": []}
    assert len(ris.wait_for(2)) == 2


def _eventually(read: Callable[[], list[dict[str, object]]], timeout: float = 10.0) -> list[dict[str, object]]:
    """The outbox sender works on its own schedule: poll until the listing has rows."""
    deadline = time.monotonic() + timeout
    while not (rows := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(rows)
