"""The sample statement in docs/ is what `broker conformance` writes for
config.example.yaml (regenerate: `broker conformance --config config.example.yaml
--output docs/conformance-statement.md`, and `--format html` for the .html)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.cli import main
from broker.config import BrokerConfig, load_config
from broker.conformance.statement import render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("output_format", "name"), [("markdown", "md"), ("html", "html")])
def test_sample_statement_in_docs_is_up_to_date(output_format: str, name: str) -> None:
    sample = (ROOT / "docs" / f"conformance-statement.{name}").read_text(encoding="utf-8")
    assert render(load_config(ROOT / "config.example.yaml"), output_format) == sample


def test_statement_follows_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(
        "profile: jahis\ndicom: {ae_title: SITEMWL, max_associations: 7, accept_unknown_callers: false,"
        " callers: {CT01: {station_only: true}}}\n"
        "mpps_forward: [{name: pacs, ae_title: PACS, host: 10.0.0.20, port: 104}]\n"
    )
    output = tmp_path / "statement.html"
    assert main(["conformance", "--config", str(config), "--format", "html", "--output", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert "<h4" in text and "<table>" in text
    assert "SITEMWL" in text and "<td>7</td>" in text
    assert "only <code>CT01</code>; others get A-ASSOCIATE-RJ (1,1,3)" in text
    assert "<code>\\ISO 2022 IR 87</code>" in text  # the jahis profile's answer character sets
    assert "OMI^O23, HL7 2.5" in text  # its RAD-4/13 form
    assert "<td>PACS</td>" in text


def test_atna_is_claimed_as_configured() -> None:
    """The Integration Statement claims ATNA with the transport the audit trail uses."""
    on = BrokerConfig.model_validate({"audit": {"enabled": True, "host": "arr.example", "protocol": "udp"}})
    statement = render(on, "markdown")
    assert "| Audit Trail and Node Authentication (ATNA) | Secure Application | ATX: UDP Syslog |" in statement
    assert "RFC 5424 syslog to arr.example:6514" in statement
    assert "off in this configuration (`audit.enabled`)" in render(BrokerConfig(), "markdown")


def test_statement_lists_the_character_sets_the_encoder_supports_issue_13() -> None:
    """Generated from broker.mapping.dicom_charsets: every supported defined term with
    its codec, and the PS3.3 terms the encoder lacks named as unsupported."""
    statement = render(BrokerConfig(), "markdown")
    for row in ("| `ISO_IR 192` | utf-8 |", "| `ISO 2022 IR 87` | iso2022_jp |", "| `ISO_IR 100` | iso8859-1 |"):
        assert row in statement
    assert "Not supported (a query naming them is answered in the sets below): `ISO_IR 203`" in statement
