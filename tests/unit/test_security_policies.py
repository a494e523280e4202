"""The security decisions without sockets: TLS context settings, the association policy
(addresses as IP or CIDR, IPv4 peers on a dual-stack socket), the HL7 sender list and
the `tls:` configuration checks."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.config import DicomConfig, Hl7SenderConfig, TlsConfig
from broker.dicom.policy import CALLED_AE_NOT_RECOGNIZED, CALLING_AE_NOT_RECOGNIZED, AssociationPolicy
from broker.errors import SenderNotAllowed
from broker.hl7.header import MessageHeader
from broker.hl7.refusals import hl7_refusal
from broker.hl7.senders import SenderPolicy
from broker.tls import client_context, server_context
from support.certs import make_pki


def test_contexts_offer_tls12_plus_and_only_aead_ecdhe_suites(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    for context in (
        server_context(TlsConfig(cert=pki.server.cert, key=pki.server.key, ca=pki.ca, require_client_cert=True)),
        client_context(TlsConfig(ca=pki.ca)),
    ):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        for cipher in context.get_ciphers():
            name = cipher["name"]
            assert name.startswith("TLS_") or (name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name))


def test_listener_verifies_client_certificates_only_with_a_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    own = {"cert": pki.server.cert, "key": pki.server.key}
    assert server_context(TlsConfig(**own)).verify_mode == ssl.CERT_NONE
    assert server_context(TlsConfig(**own, ca=pki.ca)).verify_mode == ssl.CERT_OPTIONAL
    assert server_context(TlsConfig(**own, ca=pki.ca, require_client_cert=True)).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "tls", [{"cert": "a.crt"}, {"require_client_cert": True}], ids=["cert without key", "client certs without ca"]
)
def test_incomplete_tls_configuration_is_refused(tls: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TlsConfig.model_validate(tls)


POLICY = AssociationPolicy(
    DicomConfig(
        accept_unknown_callers=False,
        callers={"CT01": {"addresses": ["10.1.2.0/24", "2001:db8::/32"]}, "ANY": {}},
    )
)


@pytest.mark.parametrize(
    ("called", "calling", "address", "reason"),
    [
        ("BROKER", "CT01", "10.1.2.77", None),
        ("BROKER", "CT01", "::ffff:10.1.2.77", None),  # IPv4 peer on a dual-stack listener
        ("BROKER", "CT01", "2001:db8::5", None),
        ("BROKER", "CT01", "10.1.3.1", CALLING_AE_NOT_RECOGNIZED),
        ("BROKER", "ANY", "192.0.2.1", None),
        ("BROKER", "NOBODY", "10.1.2.77", CALLING_AE_NOT_RECOGNIZED),
        ("OTHER", "CT01", "10.1.2.77", CALLED_AE_NOT_RECOGNIZED),
    ],
)
def test_association_policy(called: str, calling: str, address: str, reason: int | None) -> None:
    rejection = POLICY.rejection(called, calling, address)
    assert (rejection.reason if rejection else None) == reason


def test_unknown_callers_accepted_with_every_service_when_allowed() -> None:
    policy = AssociationPolicy(DicomConfig())
    assert policy.rejection("BROKER", "WHOEVER", "192.0.2.1") is None
    assert policy.services("WHOEVER") == {"verification", "worklist", "mpps"}


@pytest.mark.parametrize(
    ("application", "facility", "refused_at"),
    [("RIS", "HOSPITAL", None), ("RIS", "CLINIC", "MSH-4"), ("ADT", "ANYWHERE", None), ("EVIL", "HOSPITAL", "MSH-3")],
)
def test_sender_policy(application: str, facility: str, refused_at: str | None) -> None:
    policy = SenderPolicy([Hl7SenderConfig(application="RIS", facility="HOSPITAL"), Hl7SenderConfig(application="ADT")])
    header = MessageHeader(sending_application=application, sending_facility=facility)
    if refused_at is None:
        policy.check(header)
        return
    with pytest.raises(SenderNotAllowed) as refused:
        policy.check(header)
    assert (hl7_refusal(refused.value).ack, hl7_refusal(refused.value).location) == ("AR", refused_at)


def test_empty_sender_list_lets_everyone_in() -> None:
    SenderPolicy([]).check(MessageHeader(sending_application="ANYONE"))
