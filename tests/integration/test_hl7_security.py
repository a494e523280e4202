"""The broker end to end with TLS everywhere: HL7 in over MLLP/TLS (client certificate
required), HL7 out to the RIS and an Image Manager over MLLP/TLS (the broker presenting
its client certificate), MPPS forwarded over DICOM TLS. And the HL7 sender allow-list
(RELIABILITY.md S3): an unknown MSH-3/MSH-4 is answered AR with ERR, nothing is applied,
the raw message is kept as refused, and one security alert is raised."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker.app import Broker
from broker.mapping.mpps import merge, performed_step_from
from broker.security import HL7_SENDER
from broker.store import tables as t
from support.brokers import make_config
from support.certs import Pki, make_pki
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.mpps_scp import MppsReceiver
from support.net import free_port
from support.recorder import AlertRecorder

NW = "rad-2-placer-order/orm_o01_nw.hl7"  # from RIS|HOSPITAL


@dataclass
class Site:
    broker: Broker
    ris: RisListener
    pacs: RisListener
    mpps: MppsReceiver
    alerts: AlertRecorder
    client: ssl.SSLContext  # the ordering system's TLS client


def _peer_server(pki: Pki) -> ssl.SSLContext:
    """A peer's TLS server that insists on a client certificate from the broker's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki.server.cert, pki.server.key)
    return context


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Site]:
    pki = make_pki(tmp_path / "pki")
    peer_tls = _peer_server(pki)
    ris, pacs = (RisListener(free_port(), tls=peer_tls).start() for _ in range(2))
    mpps = MppsReceiver(free_port(), ssl_context=peer_tls).start()
    outbound = {"cert": pki.client.cert, "key": pki.client.key, "ca": pki.ca, "server_name": "localhost"}
    config = make_config(
        ris.port,
        database_url=database_url,
        hl7={
            "host": "127.0.0.1",
            "port": 0,
            "tls": {"cert": pki.server.cert, "key": pki.server.key, "ca": pki.ca, "require_client_cert": True},
            "allowed_senders": [{"application": "RIS", "facility": "HOSPITAL"}, {"application": "PACS"}],
        },
        ris={"host": "127.0.0.1", "port": ris.port, "timeout_seconds": 5, "tls": outbound},
        image_managers=[{"name": "pacs", "host": "127.0.0.1", "port": pacs.port, "tls": outbound}],
        mpps_forward=[{"name": "im", "ae_title": "IMAGEMGR", "host": "127.0.0.1", "port": mpps.port, "tls": outbound}],
    )
    alerts = AlertRecorder()
    broker = Broker(config, alerts)
    broker.start()
    client = ssl.create_default_context(cafile=str(pki.ca))
    client.load_cert_chain(pki.client.cert, pki.client.key)
    yield Site(broker, ris, pacs, mpps, alerts, client)
    broker.stop()
    for peer in (ris, pacs, mpps):
        peer.stop()


def _count(broker: Broker, table: object) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_hl7_in_and_out_and_mpps_forwarding_all_over_tls(site: Site) -> None:
    [reply] = send(site.broker.hl7.port, sample(NW), tls=site.client)
    assert ack_code(reply) == "AA"
    assert segment(site.pacs.wait_for(1)[0], "MSH", "latin-1")[9].startswith("ORM")  # RAD-4 to the Image Manager
    create = as_dataset(n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001"))
    pps, rules = site.broker.pps_manager, site.broker.profile.mpps
    pps.rad6_modality_pps_in_progress(performed_step_from(create, "1.2.3.1", rules))
    pps.rad7_modality_pps_update("1.2.3.1", lambda stored: merge(stored, as_dataset(n_set_final("COMPLETED")), rules))
    assert [op for op, _, _ in site.mpps.wait_for(2)] == ["create", "set"]  # DIMSE over TLS
    assert len(site.ris.wait_for(2)) >= 2  # status to the RIS over MLLP/TLS
    assert site.alerts.received == []


#: (MSH-3|MSH-4 in place of RIS|HOSPITAL, the field refused)
REFUSED = [("EVIL|HOSPITAL", "3"), ("RIS|ELSEWHERE", "4")]


def test_sender_not_allowed_gets_AR_nothing_applied_raw_kept_one_alert(site: Site) -> None:
    for n, (sender, field) in enumerate(REFUSED, 1):
        message = sample(NW, **{"|RIS|HOSPITAL|": f"|{sender}|"})
        [reply] = send(site.broker.hl7.port, message, tls=site.client)
        assert ack_code(reply) == "AR"
        assert segment(reply, "ERR")[1] == f"MSH^1^{field}^103&Table value not found&HL70357"  # v2.3.1 ERR-1
        with site.broker.engine.connect() as conn:
            rows = conn.execute(select(t.inbound_messages).order_by(t.inbound_messages.c.id)).all()
        assert [(r.answer, r.error_code, r.error_location, r.raw) for r in rows][-1] == (
            "AR", "103", f"MSH-{field}", message
        )  # fmt: skip
        assert site.alerts.received[n - 1 :] == [(HL7_SENDER, sender, f"MSH-{field} not on the allow-list")]
    assert _count(site.broker, t.orders) == 0
    # listed without a facility: may send from any
    [reply] = send(site.broker.hl7.port, sample(NW, **{"|RIS|HOSPITAL|": "|PACS|ANYWHERE|"}), tls=site.client)
    assert ack_code(reply) == "AA"
    assert _count(site.broker, t.orders) == 1
    assert len(site.alerts.received) == len(REFUSED)
