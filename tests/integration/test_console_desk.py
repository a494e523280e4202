"""The operator's desk over HTTP (#18 item 1), as a browser's forms drive it: a refused
ORM replayed after a profile fix (the original ERR shown first), an unscheduled MPPS
reconciled with the candidate order of its patient (shown side by side), the status
this sends the RIS refused (AE) and requeued. Each action has a confirm page, is
posted with the form token and is audited with the token's name; a read token sees no
action and the server refuses every post without an admin's cookie and form token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from broker.app import Broker
from broker.store import tables as t
from broker.store.outbox import SqlOutboxQueue
from support.audit import event_key, valid_message
from support.dicompeer import mpps
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import n_create
from support.recorder import settled
from support.web import ADMIN_TOKEN, READ_TOKEN, client, web_broker, web_port

STRICT = "name: site\nextends: ihe-swf\ncodes:\n  require_mapped: true\n  map:\n    LOCAL:\n{codes}"
MR = "      MRHEAD: {value: GX.20.00, scheme: JJ1017, meaning: MR head}\n"
CT = "      CTCHEST: {value: GX.01.00, scheme: JJ1017, meaning: 胸部CT}\n"


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="form_token" value="([0-9a-f]{64})"', page.text)
    assert found, page.text
    return found.group(1)


def _confirmed(browser: httpx.Client, confirm_url: str, **fields: str) -> httpx.Response:
    """Open a confirm page, then post its form (with the form token) to its action."""
    page = browser.get(confirm_url)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)" id="act">', page.text)
    assert action
    return browser.post(action.group(1), data={"form_token": form_token(page), **fields})


def _audits(broker: Broker) -> list[tuple[str, str, str]]:
    """(EventID, requestor UserID, alert kind or accession) of each audit message."""
    with broker.engine.connect() as conn:
        stmt = select(t.outbox.c.payload).where(t.outbox.c.destination == "audit").order_by(t.outbox.c.id)
        roots = [valid_message(p[p.index(b"<?xml") :]) for p in conn.execute(stmt).scalars()]
    found = []
    for root in roots:
        requestors = [p.get("UserID") for p in root.iter("ActiveParticipant") if p.get("UserIsRequestor") == "true"]
        names = [str(n.text) for n in root.iter("ParticipantObjectName")]
        found.append((event_key(root)[0], str(requestors[0]) if requestors else "", names[0] if names else ""))
    return found


@pytest.fixture
def site_profile(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(STRICT.format(codes=MR), encoding="utf-8")
    return path


@pytest.fixture
def fixed_broker(database_url: str, ris: RisListener, site_profile: Path) -> Iterator[Broker]:
    """A broker whose profile refused the CT order (no mapping for CTCHEST), restarted on
    the same database once the profile maps it."""
    with web_broker(ris.port, database_url, profile=str(site_profile)) as strict:
        [ack] = send(strict.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        assert ack_code(ack) == "AE"
    site_profile.write_text(STRICT.format(codes=MR + CT), encoding="utf-8")
    with web_broker(ris.port, database_url, profile=str(site_profile), audit={"enabled": True}) as fixed:
        yield fixed


def test_replay_reconcile_requeue_from_the_page(fixed_broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    broker, port = fixed_broker, web_port(fixed_broker)
    with client(port, None, cookie=ADMIN_TOKEN) as browser:
        desk = browser.get("/desk")
        [refused_id] = re.findall(r'href="/desk/messages/(\d+)/replay"', desk.text)
        confirm = browser.get(f"/desk/messages/{refused_id}/replay")
        assert "AE 103" in confirm.text and "OBR-4" in confirm.text  # the original ERR
        assert "CTCHEST^CT Chest^LOCAL" in confirm.text  # the message, one segment a line
        replayed = _confirmed(browser, f"/desk/messages/{refused_id}/replay")
        assert replayed.status_code == 200, (replayed.headers, replayed.text)
        assert f"Message {refused_id} replayed: AA" in replayed.text
        assert browser.get("/api/orders/ACC1001").json()["procedures"][0]["code"]["value"] == "GX.01.00"

        ris.script("AE")  # the RIS refuses the status the reconciliation sends
        trauma = n_create("", "", "", "1.2.392.200036.9999.6.1", PerformedProcedureStepDescription="CT chest (trauma)")
        created = mpps(broker.dicom.port, "create", tmp_path, dataset=trauma)
        assert created["status"] == 0, created
        uid = str(created["affectedSopInstanceUid"])
        choice = browser.get(f"/desk/mpps/{uid}")
        assert 'id="performed"' in choice.text and "CT chest (trauma)" in choice.text and "1970-01-01" in choice.text
        assert 'value="ACC1001"' in choice.text and "SPS1001" in choice.text and "2026-11-23 10:00" in choice.text
        linked = _confirmed(browser, f"/desk/mpps/{uid}/reconcile?accession=ACC1001", accession="ACC1001")
        assert linked.status_code == 200 and "MPPS linked to order ACC1001" in linked.text
        assert browser.get(f"/api/mpps/{uid}").json()["linked_sps_ids"] == ["SPS1001"]

        queue = SqlOutboxQueue(broker.engine)
        [dead] = settled(lambda: queue.listing("dead", 10), lambda found: len(found) == 1)
        confirm = browser.get(f"/desk/outbox/{dead.id}/requeue")
        assert all(text in confirm.text for text in ("ris", "AE", "Refused by the RIS stand-in (AE)", "207"))
        assert "Skip" in browser.get(f"/desk/outbox/{dead.id}/skip").text
        requeued = _confirmed(browser, f"/desk/outbox/{dead.id}/requeue")
        assert f"Requeue: message {dead.id} to ris" in requeued.text
    statuses = settled(lambda: [segment(m, "ORC")[5] for m in ris.received], lambda found: len(found) == 2)
    assert statuses == ["IP", "IP"]  # refused, then taken after the requeue

    audits = _audits(broker)
    assert ("110113", "web page operator", "hl7 replay") in audits
    assert ("110113", "web page operator", "outbox requeue") in audits
    assert any(event == "110111" and user == "web page operator" for event, user, _ in audits)  # the reconciliation


def test_read_token_sees_no_action_and_posts_are_refused(fixed_broker: Broker) -> None:
    port = web_port(fixed_broker)
    with client(port, None, cookie=READ_TOKEN) as reader:
        day = reader.get("/")
        assert day.status_code == 200 and "/desk" not in day.text and "/orders/new" not in day.text
        for path in ("/desk", "/orders/new", "/desk/messages/1/replay", "/desk/outbox/1/requeue"):
            assert reader.get(path).status_code == 403, path
        assert reader.post("/desk/messages/1/replay", data={"form_token": "0" * 64}).status_code == 403
        assert reader.post("/orders/new", data={"modality": "CT"}).status_code == 403
    with client(port, None, cookie=ADMIN_TOKEN) as admin:
        assert 'href="/desk"' in admin.get("/").text
        token = form_token(admin.get("/orders/new"))
        assert admin.post("/desk/messages/1/replay").status_code == 403  # no form token
        assert admin.post("/desk/messages/1/replay", data={"form_token": "0" * 64}).status_code == 403
        foreign = admin.post("/desk/messages/1/replay", data={"form_token": token}, headers={"Origin": "http://evil"})
        assert foreign.status_code == 403
        fetched = admin.post(
            "/desk/messages/1/replay", data={"form_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert fetched.status_code == 403
    with client(port, ADMIN_TOKEN) as bearer:  # the page's forms need the page's sign-in
        assert bearer.post("/desk/messages/1/replay", data={"form_token": token}).status_code == 403
    with client(port, None, cookie=ADMIN_TOKEN) as admin:  # the same token, another page view: still valid
        assert admin.post("/desk/messages/1/replay", data={"form_token": token}).status_code == 200


def test_order_form_refuses_with_the_field_named_and_offers_known_patients(fixed_broker: Broker) -> None:
    step = {"modality": "CT", "date": "2026-11-24", "time": "09:00", "procedure_code": "LOCAL|CTCHEST"}
    with client(web_port(fixed_broker), None, cookie=ADMIN_TOKEN) as admin:
        form = admin.get("/orders/new")
        assert 'value="LOCAL|CTCHEST"' in form.text and 'value="LOCAL|MRHEAD"' in form.text  # the profile's codes
        assert 'name="code_value"' not in form.text  # the profile requires mapped codes: no free entry
        assert '<option value="S">Stat (S)</option>' in form.text  # an HL7 table 0027 priority, by its meaning
        new_patient = {"form_token": form_token(form), "patient_id": "WALKIN9", "name": "KATO^JIRO", **step}
        refused = admin.post("/orders/new", data={**new_patient, "birth_date": "1970-13-45"})
        assert refused.status_code == 422 and "patient.birth_date" in refused.text
        assert 'value="WALKIN9"' in refused.text  # what was typed is kept
        placed = admin.post("/orders/new", data=new_patient)
        assert placed.status_code == 200 and "scheduled" in placed.text and "KATO, JIRO" in placed.text
        form = admin.get("/orders/new")
        assert '<option value="WALKIN9">WALKIN9 · KATO, JIRO</option>' in form.text  # the pick-list
        again = admin.post("/orders/new", data={"form_token": form_token(form), "known_patient": "WALKIN9", **step})
        assert again.status_code == 200, again.text
        assert [o["patient"]["name"]["alphabetic"] for o in admin.get("/api/orders").json()] == ["KATO^JIRO"] * 2
