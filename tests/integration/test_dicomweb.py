"""DICOMweb Modality Worklist (PS3.18 chapter 14) and MPPS (chapter 15) against a
running broker, driven by an independent HTTP client (httpx) and compared with what
the same broker answers over DIMSE (DCMTK findscu, pynetdicom). Test names carry the
clause they show."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStepRetrieve  # type: ignore[attr-defined]
from sqlalchemy import select

from broker.app import Broker
from broker.audit.messages import AUDIT
from broker.mapping.dicomweb import native_xml
from broker.store import tables as t
from support.audit import event_key, valid_message
from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.mpps_scp import MppsReceiver
from support.net import free_port
from support.recorder import settled
from support.web import ADMIN_TOKEN, web_port, web_section
from support.web import web_broker as running

SEARCH = "/dicomweb/modality-scheduled-procedure-steps"
MPPS = "/dicomweb/modality-performed-procedure-steps"
NATIVE = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
STUDY = "1.2.392.200036.9999.1.1001"
DICOM_JSON = {"Content-Type": "application/dicom+json"}


@pytest.fixture
def web(database_url: str, ris: RisListener) -> Iterator[tuple[Broker, httpx.Client]]:
    with running(ris.port, database_url) as broker:
        acks = send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), sample(ORDER))
        assert [ack_code(a) for a in acks] == ["AA", "AA"]
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
            yield broker, http


ORDER = "rad-2-placer-order/orm_o01_nw.hl7"


def _json(dataset: Dataset) -> dict[str, Any]:
    found: dict[str, Any] = dataset.to_json_dict()
    return found


def test_ps3_18_14_4_search_answers_what_c_find_answers(web: tuple[Broker, httpx.Client], tmp_path: Path) -> None:
    """14.4: the Search corresponds to the DIMSE MWL C-FIND (PS3.4 K.4.1) and 14.1 "has the same
    semantics": the same query answers the same item with the same values over both."""
    broker, http = web
    answer = http.get(SEARCH, params={"ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT01"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/dicom+json"
    [item] = [Dataset.from_json(d) for d in answer.json()]
    assert item.AccessionNumber == "ACC1001"
    assert str(item.PatientName) == "DOE^JOHN^Q"
    assert item.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT01"
    [over_dimse] = findscu(broker.dicom.port, [], tmp_path, query=as_dataset(_same_keys(item)))
    for ds in (over_dimse, item):
        ds.pop("SpecificCharacterSet", None)
        for nested in ds.ScheduledProcedureStepSequence:
            nested.pop("SpecificCharacterSet", None)
    assert _json(item) == _json(over_dimse)


def _same_keys(answer: Dataset) -> dict[str, Any]:
    """The C-FIND identifier asking for exactly the keys of a web answer: zero-item
    sequences ask for whole items (PS3.4 C.2.2.2.6), but for the station matched."""
    keys = _asked(answer)
    keys["ScheduledProcedureStepSequence"] = [_asked(answer.ScheduledProcedureStepSequence[0])]
    keys["ScheduledProcedureStepSequence"][0]["ScheduledStationAETitle"] = "CT01"
    return keys


def _asked(ds: Dataset) -> dict[str, Any]:
    return {element.keyword: [] if element.VR == "SQ" else "" for element in ds}


def test_ps3_18_14_4_3_no_match_answers_204_no_content(web: tuple[Broker, httpx.Client]) -> None:
    """Table 14.4.3-1: 200 (OK) when the origin server returns matching results, 204
    (No Content) when it has none; 8.3.4.4.1 Paging Behavior: results <= 0 (also an
    offset past the last match) is a 204."""
    _, http = web
    answer = http.get(SEARCH, params={"ScheduledProcedureStepSequence.ScheduledStationAETitle": "MR99"})
    assert (answer.status_code, answer.content) == (204, b"")
    assert http.get(SEARCH, params={"offset": "1"}).status_code == 204
    assert http.get(SEARCH, params={"offset": "0"}).status_code == 200


def test_ps3_18_14_4_1_2_match_by_tag_wildcard_and_includefield(web: tuple[Broker, httpx.Client]) -> None:
    """14.4.1.2 / Table 8.3.4-1: {attributeID} as keyword or tag; 8.3.4.3: includefield
    is a comma-separated list of attributes or "all", equivalent to C-FIND universal
    matching for each (the DIMSE return keys)."""
    _, http = web
    answer = http.get(SEARCH, params=[("00100010", "DOE*"), ("includefield", "00081080,PatientWeight")])
    [item] = [Dataset.from_json(d) for d in answer.json()]
    assert "PatientWeight" in item
    assert "Warning" not in answer.headers
    everything = http.get(SEARCH, params={"AccessionNumber": "ACC1001", "includefield": "all"}).json()
    assert len(everything[0]) > len(answer.json()[0]) - 2


def test_ps3_18_14_4_1_2_unsupported_parameters_are_named_in_a_warning(web: tuple[Broker, httpx.Client]) -> None:
    """8.3.4: an unsupported parameter is ignored and named in
    `Warning: 299 <service>: …`, where <service> is the base URI of the origin server."""
    _, http = web
    answer = http.get(SEARCH, params={"NoSuchKeyword": "x", "AccessionNumber": "ACC1001"})
    assert answer.status_code == 200
    service = str(http.base_url).rstrip("/") + "/dicomweb"  # PS3.18 8.3.4: <service> is the base URI
    assert answer.headers["Warning"].startswith(f"299 {service}: ")
    assert "NoSuchKeyword" in answer.headers["Warning"]
    assert len(answer.json()) == 1


def test_ps3_18_14_4_3_malformed_values_answer_400(web: tuple[Broker, httpx.Client]) -> None:
    """Table 14.4.3-1: 400 (Bad Request), the origin server cannot handle the search
    because of errors in the request headers or parameters."""
    _, http = web
    assert http.get(SEARCH, params={"limit": "-1"}).status_code == 400
    bad_date = http.get(SEARCH, params={"ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "2026-13"})
    assert bad_date.status_code == 400
    assert "Warning" in bad_date.headers


def test_ps3_18_8_3_4_4_offset_and_limit_page_in_creation_order(database_url: str, ris: RisListener) -> None:
    """8.3.4.4: offset skips matches, limit caps them; 8.3.4.4.1: the search is
    idempotent (the same ordered list while the matches do not change), and a Warning
    says when more results can be requested."""
    with running(ris.port, database_url) as broker:
        send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"))
        for n in range(5):
            assert ack_code(send(broker.hl7.port, scheduled_order(f"20{n}", 2000 + n))[0]) == "AA"
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
            first = http.get(SEARCH, params={"limit": "2"})
            assert "additional results" in first.headers["Warning"]
            second = http.get(SEARCH, params={"limit": "2", "offset": "2"})
            last = http.get(SEARCH, params={"limit": "2", "offset": "4"})
            assert "Warning" not in last.headers
    pages = [Dataset.from_json(d).AccessionNumber for p in (first, second, last) for d in p.json()]
    assert pages == [f"ACC20{n}" for n in range(5)]


def test_ps3_18_14_1_3_xml_answers_are_native_dicom_model_parts(web: tuple[Broker, httpx.Client]) -> None:
    """Table 14.1.3-1: multipart/related; type="application/dicom+xml" is Required; each
    part a PS3.19 NativeDicomModel document."""
    _, http = web
    answer = http.get(SEARCH, params={"AccessionNumber": "ACC1001"}, headers={"Accept": "application/dicom+xml"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith('multipart/related; type="application/dicom+xml"')
    [document] = _parts(answer)
    root = etree.fromstring(document)
    assert root.tag == f"{NATIVE}NativeDicomModel"
    [name] = root.findall(f"{NATIVE}DicomAttribute[@keyword='PatientName']/{NATIVE}PersonName/{NATIVE}Alphabetic")
    assert [name.findtext(f"{NATIVE}FamilyName"), name.findtext(f"{NATIVE}GivenName")] == ["DOE", "JOHN"]


def test_ps3_18_14_1_2_unacceptable_media_types_and_charsets_answer_406(web: tuple[Broker, httpx.Client]) -> None:
    """Table 14.1.2-1: the origin server shall support Accept and Accept-Charset (8.3.3);
    a request it cannot answer in any acceptable type or charset is a 406 (8.7.8.1)."""
    _, http = web
    assert http.get(SEARCH, headers={"Accept": "image/png"}).status_code == 406
    assert http.get(SEARCH, headers={"Accept-Charset": "iso-8859-1"}).status_code == 406


def test_ps3_18_14_1_3_every_default_and_required_media_type_is_answered(web: tuple[Broker, httpx.Client]) -> None:
    """Table 14.1.3-1: application/dicom+json (Default); application/dicom+xml,
    multipart/related; type="application/dicom+json" and multipart/related;
    type="application/dicom+xml" (Required). 10.4.4: JSON for several results is one
    top-level array; as multipart, each part an array of one object. A PS3.19 document
    holds one dataset, so bare application/dicom+xml on this list answers in parts."""
    _, http = web
    params = {"AccessionNumber": "ACC1001"}
    default = http.get(SEARCH, params=params, headers={"Accept": "*/*"})
    assert default.headers["content-type"] == "application/dicom+json"
    [item] = default.json()
    json_parts = http.get(SEARCH, params=params, headers={"Accept": 'multipart/related; type="application/dicom+json"'})
    assert json_parts.headers["content-type"].startswith('multipart/related; type="application/dicom+json"')
    assert [json.loads(part) for part in _parts(json_parts)] == [[item]]
    xml = http.get(SEARCH, params=params, headers={"Accept": "application/dicom+xml"})
    assert xml.headers["content-type"].startswith('multipart/related; type="application/dicom+xml"')
    preferred = http.get(SEARCH, params=params,
                         headers={"Accept": "application/dicom+json;q=0.5, application/dicom+xml"})  # fmt: skip
    assert preferred.headers["content-type"].startswith('multipart/related; type="application/dicom+xml"')
    refused = http.get(SEARCH, params=params, headers={"Accept": "application/dicom+json;q=0"})
    assert refused.status_code == 406


def test_ps3_18_14_4_1_the_resource_with_a_trailing_slash_as_annex_b_36_writes_it(
    web: tuple[Broker, httpx.Client],
) -> None:
    """B.36 requests `GET /radiology/modality-scheduled-procedure-steps/?…` where Table
    14.1.1-1's URI template has no slash: both are the same resource, no redirect."""
    _, http = web
    answer = http.get(f"{SEARCH}/", params={"AccessionNumber": "ACC1001"})
    assert answer.status_code == 200
    assert len(answer.json()) == 1


def test_ps3_18_15_6_1_2_retrieve_returns_the_includefield_attributes(web: tuple[Broker, httpx.Client]) -> None:
    """15.6.1.2: the origin server shall support includefield, a comma-separated list
    of attributes or "all" (corresponding to the N-GET attribute list, PS3.4 F.8.2)."""
    _, http = web
    uid = generate_uid()
    body = _mpps_json(n_create("SPS1001", "ACC1001", "RP1001", STUDY))
    assert http.post(f"{MPPS}/{uid}", content=body, headers=DICOM_JSON).status_code == 201
    [whole] = http.get(f"{MPPS}/{uid}", params={"includefield": "all"}).json()
    assert [whole] == http.get(f"{MPPS}/{uid}").json()
    [asked] = http.get(f"{MPPS}/{uid}", params={"includefield": "00100010,00400252,PerformedStationAETitle"}).json()
    assert list(asked) == ["00100010", "00400241", "00400252"]  # in tag order (F.2.2)
    assert asked == {tag: whole[tag] for tag in asked}
    unknown = http.get(f"{MPPS}/{uid}", params={"includefield": "NoSuchKeyword"})
    assert (unknown.status_code, unknown.json()) == (200, [{}])
    assert "NoSuchKeyword" in unknown.headers["Warning"]


def test_ps3_18_15_5_3_an_update_of_attributes_set_at_creation_only_is_a_409(
    web: tuple[Broker, httpx.Client],
) -> None:
    """Table 15.5.3-1, Note: when attributes are to be updated that Table F.7.2-1 says
    are made available at creation time, a 409 (Conflict) can be returned. The DICOM
    status (0x0105, No such attribute, as the N-SET gets) rides in the payload. Annex
    B.38/B.39's `…/{uid}/update` form reaches the same Update as 15.5.1's `?update`."""
    _, http = web
    uid = generate_uid()
    body = _mpps_json(n_create("SPS1001", "ACC1001", "RP1001", STUDY))
    assert http.post(f"{MPPS}/{uid}", content=body, headers=DICOM_JSON).status_code == 201
    renamed = http.post(f"{MPPS}/{uid}?update", content=_mpps_json({"PatientName": "OTHER^NAME"}), headers=DICOM_JSON)
    assert renamed.status_code == 409
    assert Dataset.from_json(renamed.json())[0x00000900].value == 0x0105
    unknown = http.post(f"{MPPS}/{generate_uid()}/update", content=_mpps_json(n_set_final()), headers=DICOM_JSON)
    assert unknown.status_code == 404
    assert http.post(f"{MPPS}/{uid}/update", content=_mpps_json(n_set_final()), headers=DICOM_JSON).status_code == 200


def _parts(answer: httpx.Response) -> list[bytes]:
    message = email.message_from_bytes(
        b"Content-Type: " + answer.headers["content-type"].encode() + b"\r\n\r\n" + answer.content
    )
    return [part.get_payload(decode=True) for part in message.get_payload()]


def _mpps_json(attributes: dict[str, Any]) -> str:
    return json.dumps(as_dataset(attributes).to_json_dict())


def test_ps3_18_15_4_create_then_15_6_retrieve_then_15_5_update(
    web: tuple[Broker, httpx.Client], ris: RisListener
) -> None:
    """15.4 Create = N-CREATE (201, Table 15.4.3-1), 15.6 Retrieve = N-GET (200,
    Table 15.6.3-1), 15.5 Update `?update` = N-SET (200, Table 15.5.3-1); linking and
    RAD-3 to the RIS as for DIMSE."""
    _, http = web
    uid = generate_uid()
    created = http.post(f"{MPPS}/{uid}", content=_mpps_json(n_create("SPS1001", "ACC1001", "RP1001", STUDY)),
                        headers=DICOM_JSON)  # fmt: skip
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"{MPPS}/{uid}")
    [record] = http.get(f"{MPPS}/{uid}").json()
    assert Dataset.from_json(record).PerformedProcedureStepStatus == "IN PROGRESS"
    updated = http.post(f"{MPPS}/{uid}?update", content=_mpps_json(n_set_final()), headers=DICOM_JSON)
    assert updated.status_code == 200
    [record] = http.get(f"{MPPS}/{uid}").json()
    assert Dataset.from_json(record).PerformedProcedureStepStatus == "COMPLETED"
    assert [segment(m, "ORC")[5] for m in ris.wait_for(2)] == ["IP", "CM"]


def test_ps3_18_15_4_3_and_15_5_3_refusals_carry_the_dicom_status(web: tuple[Broker, httpx.Client]) -> None:
    """Table 15.4.3-1: 409 when the MPPS UID is already in use, 400 for errors in the
    request; Table 15.5.3-1: 409 when the changes are incompatible with the step (a
    final step, 0x0110/0xA710); Table 15.6.3-1: 404 for an unknown MPPS."""
    _, http = web
    uid = generate_uid()
    body = n_create("SPS1001", "ACC1001", "RP1001", STUDY)
    assert http.post(f"{MPPS}/{uid}", content=_mpps_json(body), headers=DICOM_JSON).status_code == 201
    duplicate = http.post(f"{MPPS}/{uid}", content=_mpps_json(body), headers=DICOM_JSON)
    assert duplicate.status_code == 409
    assert Dataset.from_json(duplicate.json())[0x00000900].value == 0x0111
    not_in_progress = http.post(
        f"{MPPS}/{generate_uid()}", content=_mpps_json({**body, "PerformedProcedureStepStatus": "COMPLETED"}),
        headers=DICOM_JSON,
    )  # fmt: skip
    assert not_in_progress.status_code == 400
    assert "0x0106" in not_in_progress.headers["Warning"]
    assert http.post(f"{MPPS}/{uid}?update", content=_mpps_json(n_set_final()), headers=DICOM_JSON).status_code == 200
    final = http.post(f"{MPPS}/{uid}?update", content=_mpps_json(n_set_final()), headers=DICOM_JSON)
    assert final.status_code == 409
    status = Dataset.from_json(final.json())
    assert (status[0x00000900].value, status[0x00000903].value) == (0x0110, 0xA710)
    assert http.get(f"{MPPS}/{generate_uid()}").status_code == 404
    assert http.post(f"{MPPS}/{generate_uid()}", content=b"{not json", headers=DICOM_JSON).status_code == 400


def _n_get(port: int, uid: str, tags: list[int] | None = None) -> tuple[int, Dataset | None]:
    """MPPS Retrieve with pynetdicom as SCU (N-GET, PS3.4 F.8)."""
    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(ModalityPerformedProcedureStepRetrieve)
    assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
    assert assoc.is_established
    try:
        status, answer = assoc.send_n_get(tags or [], ModalityPerformedProcedureStepRetrieve, uid)
    finally:
        assoc.release()
    return int(status.Status), answer


def test_ps3_18_15_6_an_mpps_made_over_the_web_is_retrieved_over_dimse_and_forwarded(
    database_url: str, ris: RisListener
) -> None:
    port = free_port()
    target = {"name": "pacs-mpps", "ae_title": "IMAGEMGR", "host": "127.0.0.1", "port": port}
    receiver = MppsReceiver(port).start()
    try:
        with running(ris.port, database_url, mpps_forward=[target]) as broker:
            send(broker.hl7.port, sample(ORDER))
            uid = generate_uid()
            with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
                body = _mpps_json(n_create("SPS1001", "ACC1001", "RP1001", STUDY))
                assert http.post(f"{MPPS}/{uid}", content=body, headers=DICOM_JSON).status_code == 201
                assert http.post(f"{MPPS}/{uid}?update", content=_mpps_json(n_set_final()),
                                 headers=DICOM_JSON).status_code == 200  # fmt: skip
            status, whole = _n_get(broker.dicom.port, uid)
            asked_status, asked = _n_get(broker.dicom.port, uid, [0x00400252, 0x00400270])
            missing, _ = _n_get(broker.dicom.port, generate_uid())
            received = receiver.wait_for(2)
    finally:
        receiver.stop()
    assert (status, whole.PerformedProcedureStepStatus, whole.PatientID) == (0, "COMPLETED", "PAT001")
    assert asked_status == 0
    assert [e.keyword for e in asked] == ["PerformedProcedureStepStatus", "ScheduledStepAttributesSequence"]
    assert missing == 0x0112
    assert received == [("create", uid, "IN PROGRESS"), ("set", uid, "COMPLETED")]


def test_ps3_18_15_6_an_mpps_made_over_dimse_is_retrieved_over_the_web(
    web: tuple[Broker, httpx.Client], tmp_path: Path
) -> None:
    broker, http = web
    create = n_create("SPS1001", "ACC1001", "RP1001", STUDY)
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=create)["affectedSopInstanceUid"])
    [record] = http.get(f"{MPPS}/{uid}").json()
    assert Dataset.from_json(record).PerformedStationAETitle == "CT01"
    xml = http.get(f"{MPPS}/{uid}", headers={"Accept": "application/dicom+xml"})
    assert xml.headers["content-type"] == "application/dicom+xml"  # one dataset: one document
    assert etree.fromstring(xml.content).find(f"{NATIVE}DicomAttribute[@keyword='PerformedStationAETitle']") is not None
    parts = http.get(f"{MPPS}/{uid}", headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert [etree.fromstring(p).tag for p in _parts(parts)] == [f"{NATIVE}NativeDicomModel"]


def test_ps3_18_14_4_japanese_names_keep_three_groups_in_json_and_xml(database_url: str, ris: RisListener) -> None:
    with running(ris.port, database_url, profile="jahis") as broker:
        assert ack_code(send(broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"))[0]) == "AA"
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
            [item] = http.get(SEARCH, params={"PatientID": "JP0001"}).json()
            xml = http.get(SEARCH, params={"PatientID": "JP0001"}, headers={"Accept": "application/dicom+xml"})
    assert item["00100010"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "YAMADA^TAROU", "Ideographic": "山田^太郎", "Phonetic": "ヤマダ^タロウ"}],
    }
    assert "00080005" not in item
    [document] = _parts(xml)
    [name] = etree.fromstring(document).findall(f"{NATIVE}DicomAttribute[@keyword='PatientName']/{NATIVE}PersonName")
    groups = {g.tag.removeprefix(NATIVE): [g.findtext(f"{NATIVE}FamilyName"), g.findtext(f"{NATIVE}GivenName")]
              for g in name}  # fmt: skip
    assert groups == {
        "Alphabetic": ["YAMADA", "TAROU"],
        "Ideographic": ["山田", "太郎"],
        "Phonetic": ["ヤマダ", "タロウ"],
    }


CT01_TOKEN, QA_TOKEN, FAR_TOKEN = "ct01-modality-token-0001", "qa-station-token-00001", "far-away-token-000001"


def test_ps3_18_14_and_15_access_follows_the_dimse_callers_rules(database_url: str, ris: RisListener) -> None:
    """Where DIMSE refuses unknown calling AEs, the web does too; a token bound to a
    calling AE title gets that caller's station rule, services and addresses."""
    callers = {"CT01": {"station_only": True}, "QA": {"services": ["verification"]},
               "FAR": {"addresses": ["10.99.0.0/16"]}}  # fmt: skip
    dicom = {"host": "127.0.0.1", "port": free_port(), "accept_unknown_callers": False, "callers": callers}
    tokens = [{"name": n, "token": t, "calling_ae": n} for n, t in (("CT01", CT01_TOKEN), ("QA", QA_TOKEN),
                                                                    ("FAR", FAR_TOKEN))]  # fmt: skip
    tokens += web_section()["tokens"]
    with running(ris.port, database_url, dicom=dicom, web=web_section(tokens=tokens)) as broker:
        send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), sample(ORDER))
        send(broker.hl7.port, scheduled_order("MR1", 3001).replace(b"|CT|", b"|MR|"))
        base = f"http://127.0.0.1:{web_port(broker)}"
        with httpx.Client(base_url=base, timeout=10) as anonymous:
            assert anonymous.get(SEARCH).status_code == 401
            assert anonymous.get(f"{MPPS}/{generate_uid()}").status_code == 401

        def search(token: str) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
                return http.get(SEARCH)

        ct01 = search(CT01_TOKEN)
        assert [Dataset.from_json(d).ScheduledProcedureStepSequence[0].ScheduledStationAETitle
                for d in ct01.json()] == ["CT01"]  # fmt: skip
        assert len(search(ADMIN_TOKEN).json()) == 2  # an operator's token is bound to no station
        assert search(QA_TOKEN).status_code == 403
        assert search(FAR_TOKEN).status_code == 403
        assert search("not-a-token-of-this-broker").status_code == 401


def test_ps3_18_14_and_15_web_mpps_and_search_are_audited_like_dimse(database_url: str, ris: RisListener) -> None:
    audit = {"enabled": True, "host": "127.0.0.1", "port": free_port(), "protocol": "udp",
             "audit_source_id": "test-broker"}  # fmt: skip
    with running(ris.port, database_url, audit=audit) as broker:
        send(broker.hl7.port, sample(ORDER))
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
            http.get(SEARCH, params={"AccessionNumber": "ACC1001"})
            body = _mpps_json(n_create("SPS1001", "ACC1001", "RP1001", STUDY))
            assert http.post(f"{MPPS}/{generate_uid()}", content=body, headers=DICOM_JSON).status_code == 201
        # the Query is queued and written a moment later (broker/audit/trail.py)
        events = settled(lambda: _audit_events(broker), lambda events: ("110112", "E", "") in events)
    assert ("110112", "E", "") in events  # Query, as for a C-FIND
    assert ("110111", "C", "") in events  # Procedure Record, as for an N-CREATE


def _audit_events(broker: Broker) -> list[tuple[str, str, str]]:
    with broker.engine.connect() as conn:
        payloads = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.destination == AUDIT)).scalars()
        return [event_key(valid_message(p[p.index(b"<?xml") :])) for p in payloads]


def test_ps3_18_15_4_1_4_create_in_xml_and_hostile_bodies_are_refused(web: tuple[Broker, httpx.Client]) -> None:
    _, http = web
    uid = generate_uid()
    xml = native_xml(as_dataset(n_create("SPS1001", "ACC1001", "RP1001", STUDY)).to_json_dict())
    created = http.post(f"{MPPS}/{uid}", content=xml, headers={"Content-Type": "application/dicom+xml"})
    assert created.status_code == 201
    [record] = http.get(f"{MPPS}/{uid}").json()
    assert str(Dataset.from_json(record).PatientName) == "DOE^JOHN^Q"
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">&x;</NativeDicomModel>'
    )
    refused = http.post(f"{MPPS}/{generate_uid()}", content=xxe, headers={"Content-Type": "application/dicom+xml"})
    assert refused.status_code == 400
    assert "root:" not in refused.text
    deep = b"[" * 1_000 + b"]" * 1_000  # within the body limit, far beyond the nesting cap
    assert http.post(f"{MPPS}/{generate_uid()}", content=deep, headers=DICOM_JSON).status_code == 400
    too_big = b"[" + b" " * 8192 + b"]"
    assert http.post(f"{MPPS}/{generate_uid()}", content=too_big, headers=DICOM_JSON).status_code == 413
    plain = http.post(f"{MPPS}/{generate_uid()}", content=b"{}", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 400
