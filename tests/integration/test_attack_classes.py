"""One regression test per attack class seen in DICOM and HL7 servers in 2023-2026
(#15 Deliver 6), each named after its class. Where a guard test already exists it is
kept where it is and listed in ATTACK_CLASSES; `test_each_attack_class_has_its_tests`
fails when one of them disappears or is renamed.
"""

from __future__ import annotations

import ast
import gzip
import socket
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from broker.app import Broker
from broker.safe_xml import UnsafeXml, parse_xml
from support.dicompeer import mpps
from support.file_access import recording
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import n_create
from support.pdus import associate_rq, c_find_rq, final_status, read_pdu
from support.web import ADMIN_TOKEN, client, web_broker, web_port, web_section

ROOT = Path(__file__).resolve().parents[2]
BROKER = ROOT / "broker"

ATTACK_CLASSES = {
    "HL7 segment injection from DICOM-sourced values": [
        "tests/integration/test_hl7_segment_injection.py::test_hl7_segment_injection_through_every_mpps_field_reaching_rad3",
        "tests/integration/test_hl7_segment_injection.py::test_hl7_segment_injection_through_hl7_sourced_values_and_answers",
    ],
    "deserialization of untrusted data (Mirth CVE-2023-43208)": [
        "tests/integration/test_attack_classes.py::test_deserialization_no_pickle_yaml_load_or_eval_in_the_broker",
    ],
    "XML external entities (XXE in DICOMweb STOW-RS/UPS-RS)": [
        "tests/integration/test_attack_classes.py::test_xml_external_entities_refused_and_xml_parsed_in_one_place",
        "tests/integration/test_dicomweb.py::test_ps3_18_15_4_1_4_create_in_xml_and_hostile_bodies_are_refused",
    ],
    "AE titles and identifiers reaching file paths": [
        "tests/integration/test_attack_classes.py::test_path_traversal_identifiers_never_reach_a_file_path",
    ],
    "allocation from lengths read from the wire (Orthanc CVE-2026-5438/5440)": [
        "tests/integration/test_dicom_guards.py::test_pdu_length_ffffffff_aborted_without_allocating",
        "tests/integration/test_dicom_guards.py::test_p_data_over_the_negotiated_maximum_aborted",
        "tests/integration/test_dicom_guards.py::test_dimse_message_without_last_fragment_aborted_at_the_cap",
        "tests/unit/test_hl7_mllp_frames.py::test_frame_over_the_limit_raises_frame_too_large_mllp",
        "tests/integration/test_hl7_intake.py::test_oversize_frame_closes_connection_but_listener_serves_next",
        "tests/integration/test_web_api.py::test_large_or_compressed_bodies_refused_before_reading_s5",
        "tests/integration/test_attack_classes.py::test_lengths_from_the_wire_http_body_gzip_bomb_and_json_depth",
        "tests/integration/test_attack_classes.py::test_xml_external_entities_refused_and_xml_parsed_in_one_place",
    ],
    "admin API open by default (Orthanc CVE-2025-0896)": [
        "tests/integration/test_web_defaults.py::test_admin_api_closed_without_a_token_reads_still_served",
        "tests/unit/test_web_config.py::test_network_bind_without_token_refused",
    ],
    "DNS rebinding to the loopback API": [
        "tests/integration/test_web_defaults.py::test_foreign_host_header_refused_dns_rebinding",
    ],
    "crafted worklist queries (RELIABILITY F3)": [
        "tests/integration/test_hostile_cfind.py::test_any_identifier_gets_an_answer_or_a_refusal_within_2_s",
    ],
}


def _test_names(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)}


def test_each_attack_class_has_its_tests() -> None:
    missing = [
        test
        for tests in ATTACK_CLASSES.values()
        for test in tests
        if test.split("::")[1] not in _test_names(ROOT / test.split("::")[0])
    ]
    assert missing == []


# --- deserialization -------------------------------------------------------------------

#: Modules whose loading runs code chosen by whoever wrote the bytes.
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "shelve", "marshal", "dill", "cloudpickle", "jsonpickle", "joblib"}
#: yaml.load & co. build arbitrary Python objects (safe_load does not); APScheduler's
#: persistent job stores pickle jobs into a database.
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
               "Loader", "UnsafeLoader", "FullLoader", "CLoader", "UnsafeConstructor"}  # fmt: skip
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def unsafe_code(source: str) -> list[str]:
    """Each use of a deserializer or evaluator that can run code, by line."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in UNSAFE_MODULES or node.module.startswith("apscheduler.jobstores.sqlalchemy"):
                found.append(f"{node.lineno}: from {node.module}")
            elif top == "yaml":
                found += [f"{node.lineno}: from yaml import {a.name}" for a in node.names if a.name in UNSAFE_YAML]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml":
            if node.attr in UNSAFE_YAML:
                found.append(f"{node.lineno}: yaml.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in UNSAFE_BUILTINS:
            found.append(f"{node.lineno}: {node.func.id}()")
    return found


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(BROKER.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


def test_deserialization_no_pickle_yaml_load_or_eval_in_the_broker() -> None:
    planted = "import pickle\nfrom yaml import load\nimport yaml\nyaml.load(x, Loader=yaml.Loader)\neval(s)\n"
    assert len(unsafe_code(planted)) == 5  # the check sees each kind
    assert unsafe_code("import yaml\nyaml.safe_load(text)\n") == []
    found = {str(path.relative_to(ROOT)): hits for path, source in _sources() if (hits := unsafe_code(source))}
    assert found == {}


# --- XML --------------------------------------------------------------------------------

XXE = [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>',  # laughs
    b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>',
    b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><r/>',
    b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><!DOCTYPE x><xi:include href="file:///etc/passwd"/></r>',
    b"<a>" * 33 + b"</a>" * 33,  # deeper than MAX_DEPTH
    b"<r>" + b"x" * (1 << 20) + b"</r>",  # over MAX_BYTES
    b"<r><unclosed></r>",
]
#: Calls that parse XML; only broker/safe_xml.py may make them.
XML_PARSERS = {"fromstring", "parse", "XML", "iterparse", "XMLParser", "XMLPullParser", "parseString",
               "make_parser", "ParserCreate", "fromstringlist", "XMLID"}  # fmt: skip
XML_MODULES = ("xml", "lxml", "defusedxml")
#: Names an XML module goes by, for `ElementTree.parse(...)`; other `.parse` (urllib, dates) are not XML.
XML_MODULE_NAMES = {"ElementTree", "ET", "etree", "cElementTree", "minidom", "pulldom", "expat", "sax", "safe_xml"}


def xml_parsing(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in XML_MODULES:
            named = [
                a.name for a in node.names if a.name in XML_PARSERS or node.module.startswith(("xml.dom", "xml.sax"))
            ]
            found += [f"{node.lineno}: from {node.module} import {n}" for n in named]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names if a.name.split(".")[0] in ("lxml", "defusedxml")]
            mods += [a.name for a in node.names if a.name.startswith(("xml.dom", "xml.sax", "xml.parsers"))]
            found += [f"{node.lineno}: import {m}" for m in mods]
        elif isinstance(node, ast.Attribute) and node.attr in XML_PARSERS:
            owner = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
            if node.attr != "parse" or owner in XML_MODULE_NAMES:
                found.append(f"{node.lineno}: {owner}.{node.attr}")
    return found


def test_xml_external_entities_refused_and_xml_parsed_in_one_place() -> None:
    native = b'<NativeDicomModel><DicomAttribute tag="00100010" vr="PN" keyword="PatientName"/></NativeDicomModel>'
    assert parse_xml(native)[0].get("keyword") == "PatientName"
    refused = []
    for document in XXE:
        with pytest.raises(UnsafeXml) as why:
            parse_xml(document)
        refused.append(str(why.value))
    assert "root:" not in " ".join(refused)  # no file content in any refusal
    planted = "from xml.etree.ElementTree import fromstring\nimport lxml.etree\nElementTree.parse(f)\nx.fromstring(b)\n"
    assert len(xml_parsing(planted)) == 4
    assert xml_parsing("from urllib.parse import urlsplit\nurllib.parse.quote(x)\nparser.parse(args)\n") == []
    elsewhere = {
        str(path.relative_to(ROOT)): hits
        for path, source in _sources()
        if path.name != "safe_xml.py" and (hits := xml_parsing(source))
    }
    assert elsewhere == {}


# --- file paths -------------------------------------------------------------------------

MARK = "EVILMARK"  # in every hostile value: a file path holding it was steered by the wire
#: Stored as data (a backslash, `\E\`, is refused at intake: no DICOM SH or LO holds it).
HOSTILE_HL7 = {"PAT001": f"../../{MARK}/p", "ACC1001": f"../{MARK}/a", "SPS1001": f"/{MARK}/s"}


@pytest.fixture
def broker_in(tmp_path: Path, ris: RisListener, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A broker whose working directory is its own: relative paths would land there."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    (tmp_path / "db").mkdir()
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'db' / 'broker.db'}") as broker:
        yield broker


def _c_find(port: int, calling: str, identifier: Dataset) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(associate_rq(calling=calling, abstract="1.2.840.10008.5.1.4.31"))
        if read_pdu(sock)[0] != 0x02:
            return -2  # association refused: nothing read further
        sock.sendall(c_find_rq(identifier))
        return final_status(sock)


def test_path_traversal_identifiers_never_reach_a_file_path(broker_in: Broker, tmp_path: Path) -> None:
    """The broker writes files in two places only: its SQLite database (database.url) and
    what an operator names on the command line (`broker conformance --output`). No value
    from HL7, DICOM or HTTP takes part in any path: while hostile AE titles, patient IDs,
    accession numbers and step IDs (`../`, NUL, `/`, `\\`) go through every listener,
    every path the process opens, creates, lists or removes is recorded."""
    mpps_dir = tmp_path / "mpps"
    mpps_dir.mkdir()
    identifier = Dataset()
    identifier.PatientID = f"../../{MARK}\x00"
    identifier.AccessionNumber = f"/{MARK}/.."
    step = Dataset()
    step.ScheduledStationAETitle = f"..\\{MARK}"
    identifier.ScheduledProcedureStepSequence = [step]
    with recording() as accesses:
        adt = sample("rad-1-patient-registration/adt_a04.hl7", **HOSTILE_HL7)
        orm = sample("rad-2-placer-order/orm_o01_nw.hl7", **HOSTILE_HL7)
        nul = sample("rad-2-placer-order/orm_o01_nw.hl7", ORM0001="NUL1", PAT001=f"..\x00/{MARK}")
        answers = [ack_code(a) for a in send(broker_in.hl7.port, adt, orm, nul)]
        created = mpps(
            broker_in.dicom.port, "create", mpps_dir, aet=f"../{MARK}",
            dataset=n_create(f"/{MARK}/s", f"../{MARK}", "RP1001", "1.2.392.200036.9999.1.1001",
                             PatientID=f"../../{MARK}", PerformedStationAETitle=f"../{MARK}"),
        )  # fmt: skip
        statuses = [_c_find(broker_in.dicom.port, calling, identifier) for calling in (f"../{MARK}", f"{MARK}\x00/..")]
        with client(web_port(broker_in), ADMIN_TOKEN) as api:
            web = [
                api.get(f"/api/orders/..%2F..%2F{MARK}").status_code,
                api.get("/api/patients", params={"patient_id": f"../../{MARK}"}).status_code,
                api.get(f"/api/mpps/..%2F{MARK}").status_code,
                api.get("/static/..%2F..%2F..%2Fpyproject.toml").status_code,
                api.get("/static/swagger-ui/..%2F..%2Fweb%2Fserver.py").status_code,
                api.get(f"/static/%2e%2e/%2e%2e/{MARK}").status_code,
                api.get("/static/broker.css").status_code,  # opened on a thread of the web server
            ]
    assert answers[:2] == ["AA", "AA"]  # stored as data...
    assert created["status"] == 0 and statuses[0] == 0
    assert web[:3] == [404, 200, 404] and web[3:] == [404, 404, 404, 200]  # static mounts stay in their folders
    print(f"answers {answers}, MPPS {created['status']}, C-FIND {statuses}, web {web}; written: {accesses.written()}")
    assert any(path.endswith("static/broker.css") for _, path, _ in accesses.seen)  # the recorder sees every thread
    assert accesses.paths_containing(MARK) == []  # ...and never a path
    database = str(tmp_path / "db" / "broker.db")
    assert accesses.written() <= {database, str(mpps_dir / "mpps_scu-0.json")}  # the test's own file for the peer
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == []  # nothing created in the working directory


# --- lengths from the wire ----------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident set now (not the peak: an earlier test may have set that)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096)


@pytest.fixture
def web_64k(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    """The default body limit (64 KiB), so a gzip bomb and deep JSON fit under it."""
    web = web_section(max_body_bytes=64 * 1024)
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'web.db'}", web=web) as broker:
        yield broker


def test_lengths_from_the_wire_http_body_gzip_bomb_and_json_depth(web_64k: Broker) -> None:
    """HTTP (RELIABILITY S5): a declared 4 GiB body is refused before a byte of it is
    read; a gzip bomb (1 GiB of zeros in ~1 MiB, here 64 MiB in 64 KiB) is never
    inflated; JSON nested 30,000 deep within the size limit is a 4xx, not a crash; the
    process grows by less than 50 MB through all of it. PDU, DIMSE and MLLP lengths
    have their guard tests (ATTACK_CLASSES)."""
    port = web_port(web_64k)
    head = (
        f"POST /api/outbox/requeue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
        "Content-Type: application/json\r\n"
    ).encode()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 64 * 1024 and len(gzip.decompress(bomb)) == 64 << 20
    deep = b'{"ids": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    before = _rss_bytes()
    for _ in range(20):
        assert _exchange(port, head + b"Content-Length: 4294967296\r\n\r\n").startswith(b"HTTP/1.1 413")
        gzipped = head + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb
        assert _exchange(port, gzipped).startswith(b"HTTP/1.1 415")
        nested = _exchange(port, head + b"Content-Length: %d\r\n\r\n" % len(deep) + deep)
        assert nested.startswith((b"HTTP/1.1 400", b"HTTP/1.1 422")), nested[:200]
    growth = _rss_bytes() - before
    print(f"RSS growth over 20 rounds of 4 GiB declared, 64 MiB gzip bomb, 30k-deep JSON: {growth / 1e6:.1f} MB")
    assert growth < 50_000_000
    with client(port, ADMIN_TOKEN) as admin:  # and the API still answers
        assert admin.post("/api/outbox/requeue", json={"ids": [1]}).json() == {"requeued": 0, "ids": []}
