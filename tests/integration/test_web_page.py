"""The page without a browser: who gets it, the sign-in form's answers, and names from
the wire rendered as text, never as markup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from broker.app import Broker
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import as_dataset, n_create
from support.senders import MppsSender
from support.web import ADMIN_TOKEN, READ_TOKEN, client, web_broker, web_port


@pytest.fixture
def page_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'page.db'}") as broker:
        yield broker


def test_sign_in_sets_http_only_cookie_and_bad_token_gets_form_again(page_broker: Broker) -> None:
    with client(web_port(page_broker), None) as browser:
        assert browser.get("/").headers["location"] == "/login"
        wrong = browser.post("/login", data={"token": "not-a-token-of-this-broker"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        signed_in = browser.post("/login", data={"token": READ_TOKEN})
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert browser.get("/").status_code == 200  # the client keeps the cookie
        assert browser.post("/logout").headers["set-cookie"].startswith('broker_token="";')


def test_names_from_the_wire_are_escaped(page_broker: Broker) -> None:
    hostile = sample("rad-2-placer-order/orm_o01_nw.hl7", **{"DOE^JOHN^Q": "<script>alert(1)</script>^JOHN"})
    assert ack_code(send(page_broker.hl7.port, hostile)[0]) == "AA"
    with client(web_port(page_broker), None, cookie=ADMIN_TOKEN) as browser:
        html = browser.get("/", params={"day": "2026-11-23"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;, JOHN" in html
    assert "<script>" not in html


def test_station_ae_from_an_mpps_is_escaped_on_the_page(page_broker: Broker) -> None:
    """A DICOM-sourced value (an unscheduled MPPS's Performed Station AE Title, shown in
    "MPPS to reconcile") is text on the page, never markup."""
    hostile = n_create("NOSUCHSPS", "NOSUCHACC", "RP9", "1.2.3.9", PerformedStationAETitle="<img src=x>'\"&")
    assert MppsSender(page_broker.dicom.port).create(generate_uid(), as_dataset(hostile))() == 0x0000
    with client(web_port(page_broker), None, cookie=ADMIN_TOKEN) as browser:
        html = browser.get("/", params={"day": "2026-11-23"}).text
    assert "&lt;img src=x&gt;&#39;&#34;&amp;" in html
    assert "<img src=x>" not in html
