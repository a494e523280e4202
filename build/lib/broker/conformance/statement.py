"""`broker conformance`: the whole document, as Markdown or HTML."""

from __future__ import annotations

from broker.config import BrokerConfig
from broker.conformance.dicom_part import DicomStatement
from broker.conformance.document import Document
from broker.conformance.hl7_part import Hl7Statement, write_integration_statement
from broker.mapping.profile import load_profile


def build(config: BrokerConfig) -> Document:
    """The Conformance Statement for this configuration and its profile."""
    profile = load_profile(config.profile)
    doc = Document("swf broker - DICOM Conformance Statement, HL7 Interface and IHE Integration Statement")
    DicomStatement(config, profile).write(doc)
    Hl7Statement(config, profile).write(doc)
    write_integration_statement(doc, config, profile)
    return doc


def render(config: BrokerConfig, output_format: str) -> str:
    doc = build(config)
    return doc.to_html() if output_format == "html" else doc.to_markdown()
