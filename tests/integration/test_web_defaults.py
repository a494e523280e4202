"""The web face's defaults against a running broker (RELIABILITY W1, #15 Deliver 2):
with no token configured the API is read-only; a foreign Host header is refused (DNS
rebinding); every answer carries the security headers and no page holds inline script
or style; HTTPS with the listeners' BCP 195 context; and parameters out of range are
answered 422, never 500 (#14: `/?day=9999-12-31` was a 500)."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import html

from broker.app import Broker
from support.certs import Pki, make_pki
from support.hl7peer import RisListener
from support.web import ADMIN_TOKEN, READ_TOKEN, client, web_broker, web_port, web_section

CHANGES = "web.tokens"


@pytest.fixture
def open_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    """The example configuration's web section: loopback, no token."""
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'web.db'}", web=web_section(tokens=[])) as broker:
        yield broker


@pytest.fixture
def test_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    """The tests' usual web section: loopback, a read and an admin token."""
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'web.db'}") as broker:
        yield broker


@pytest.fixture
def token_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    extra = web_section(allowed_hosts=["broker.example.org", "ris-gateway:8443"])
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'web.db'}", web=extra) as broker:
        yield broker


def _changes(api: httpx.Client) -> list[tuple[str, str]]:
    """Every route of the operators' API (/api) that is not a read, from its own OpenAPI
    description, so a route added later is checked too. (DICOMweb's MPPS Create/Update
    are modality services under the DIMSE callers' rules, as N-CREATE/N-SET are.)"""
    paths = api.get("/openapi.json").json()["paths"]
    writes = ((method.upper(), path) for path, ops in paths.items() for method in ops if method not in ("get", "head"))
    return [(method, path) for method, path in writes if path.startswith("/api/")]


def test_admin_api_closed_without_a_token_reads_still_served(open_broker: Broker) -> None:
    with client(web_port(open_broker), None) as anonymous:
        changes = _changes(anonymous)
        assert len(changes) >= 3  # replay, requeue, reconcile
        for method, path in changes:
            concrete = path.replace("{uid}", "1.2.3").replace("{message_id}", "1")
            answer = anonymous.request(method, concrete, json={"ids": [1], "accession_number": "A"})
            assert answer.status_code == 403, (method, path, answer.text)
            assert CHANGES in answer.json()["detail"] and "admin" in answer.json()["detail"]
        assert anonymous.get("/api/orders").status_code == 200
        assert anonymous.get("/").status_code == 200  # the page: read-only, no sign-in needed
    with client(web_port(open_broker), "any-token-at-all-0000") as guessing:  # no token makes anyone admin
        assert guessing.post("/api/outbox/requeue", json={"ids": [1]}).status_code == 403


def _get(port: int, host: str, path: str = "/health") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_foreign_host_header_refused_dns_rebinding(token_broker: Broker) -> None:
    port = web_port(token_broker)
    served = [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
              "broker.example.org", f"broker.example.org:{port}", "ris-gateway:8443"]  # fmt: skip
    refused = [f"attacker.example:{port}", "attacker.example", f"127.0.0.1:{port + 1}", "127.0.0.1",
               "ris-gateway:8080", f"localhost.attacker.example:{port}", "", f"127.0.0.1:{port}:1", "[::1"]  # fmt: skip
    assert {host: _get(port, host) for host in served} == dict.fromkeys(served, 200)
    assert {host: _get(port, host, "/api/orders") for host in refused} == dict.fromkeys(refused, 421)
    with client(port, READ_TOKEN) as reader:  # a rebinding page's request: the right port, its own name
        rebound = reader.get("/api/patients", headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 421 and "web.allowed_hosts" in rebound.text


def _inline_code(page: str) -> list[str]:
    """Script or style a strict CSP would block: inline <script>, <style>, style= and on*= attributes."""
    tree = html.fromstring(page)
    found = [f"<script>{s.text[:30]}" for s in tree.iter("script") if not s.get("src") or (s.text or "").strip()]
    found += ["<style>" for _ in tree.iter("style")]
    for element in tree.iter():
        found += [f"{element.tag} {name}=" for name in element.attrib if name == "style" or name.startswith("on")]
    return found


def test_security_headers_on_every_answer_and_no_inline_code(token_broker: Broker) -> None:
    port = web_port(token_broker)
    with client(port, None, cookie=READ_TOKEN) as browser:
        answers = {
            path: browser.get(path)
            for path in ("/", "/login", "/docs", "/api/orders", "/health", "/openapi.json", "/static/broker.css",
                         "/static/docs.js", "/static/swagger-ui/swagger-ui-bundle.js", "/no-such-page")
        }  # fmt: skip
        answers["421"] = browser.get("/", headers={"Host": "attacker.example"})
    assert {path: a.status_code for path, a in answers.items()} == {
        **dict.fromkeys(answers, 200), "/no-such-page": 404, "421": 421,
    }  # fmt: skip
    for path, answer in answers.items():
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
    assert answers["/api/orders"].headers["cache-control"] == "no-store"  # patient data is never cached
    for path in ("/", "/login", "/docs"):
        assert _inline_code(answers[path].text) == [], path
        assert "http://" not in answers[path].text and "https://" not in answers[path].text, path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def test_web_over_tls_with_the_bcp_195_context(tmp_path: Path, ris: RisListener, pki: Pki) -> None:
    tls = {"cert": str(pki.server.cert), "key": str(pki.server.key)}
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'web.db'}", web=web_section(tls=tls)) as broker:
        port = web_port(broker)
        verified = ssl.create_default_context(cafile=str(pki.ca))
        with httpx.Client(base_url=f"https://localhost:{port}", verify=verified, timeout=10) as https:
            answer = https.get("/api/orders", headers={"Authorization": f"Bearer {READ_TOKEN}"})
            assert answer.status_code == 200
            assert answer.headers["strict-transport-security"].startswith("max-age=")
        weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        weak.load_verify_locations(pki.ca)
        weak.maximum_version = ssl.TLSVersion.TLSv1_2
        weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")  # CBC-SHA1: BCP 195 says no
        with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            weak.wrap_socket(plain, server_hostname="localhost")
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            http.get("/health")  # plain HTTP on the HTTPS port gets no answer


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/?day=9999-12-31", None),
        ("GET", "/?day=0001-01-01", None),
        ("GET", "/?day=2026-13-01", None),
        ("GET", "/api/steps?day=9999-12-31", None),
        ("GET", "/api/steps?limit=100000000000000000000000", None),
        ("GET", "/api/steps?station_ae=" + "A" * 17, None),
        ("GET", "/api/patients?patient_id=" + "P" * 65, None),
        ("GET", "/api/orders?accession_number=" + "A" * 65, None),
        ("GET", "/api/orders/" + "A" * 65, None),
        ("GET", "/api/mpps/" + "1" * 65, None),
        ("GET", "/api/messages?limit=0", None),
        ("POST", "/api/messages/99999999999999999999/replay", None),
        ("POST", "/api/messages/0/replay", None),
        ("POST", "/api/outbox/requeue", {"ids": [2**64]}),
        ("POST", "/api/outbox/requeue", {"ids": [-(2**64)]}),
    ],
)
def test_parameters_out_of_range_answered_422(test_broker: Broker, method: str, path: str, body: object) -> None:
    with client(web_port(test_broker), ADMIN_TOKEN, cookie=ADMIN_TOKEN) as admin:
        answer = admin.request(method, path, json=body)
    assert answer.status_code == 422, answer.text


def test_tokens_never_in_an_answer_or_a_log(test_broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-token-of-another-site-0001"
    caplog.set_level(logging.DEBUG)  # every logger, every level
    port = web_port(test_broker)
    with client(port, None) as browser:
        answers = [browser.post("/login", data={"token": wrong}), browser.post("/login", data={"token": READ_TOKEN})]
    with client(port, wrong) as guessing:
        answers += [guessing.get("/api/orders"), guessing.post("/api/outbox/requeue", json={"ids": [1]})]
    with client(port, READ_TOKEN) as reader:
        answers += [reader.post("/api/outbox/requeue", json={"ids": [1]}), reader.get("/api/orders?limit=0")]
    assert [a.status_code for a in answers] == [401, 303, 401, 401, 403, 422]
    server_side = [f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    texts = [*server_side, *(a.text for a in answers), *(str(dict(a.headers)) for a in answers[2:])]
    assert [t for t in texts if wrong in t or READ_TOKEN in t or ADMIN_TOKEN in t] == []
