"""What each destination answer makes of an outbox message: HL7 Table 0008 codes
(broker/hl7/sender.py) and DIMSE N-CREATE / N-SET statuses (broker/dicom/forwarder.py)."""

from __future__ import annotations

import pytest

from broker.dicom.forwarder import verdict_of
from broker.hl7.sender import outcome_of
from broker.jobs.outbox_sender import Verdict
from broker.store.outbox import Answer

HEADER = b"MSH|^~\\&|RIS|HOSP|BROKER|RAD|20261123||ACK|1|P|2.3.1\r"


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        ("AA", Verdict.DELIVERED),
        ("CA", Verdict.DELIVERED),
        ("AR", Verdict.RETRY),  # rejected for a reason unrelated to content: may be resent
        ("CR", Verdict.RETRY),
        ("AE", Verdict.REFUSED),  # the content was refused: a dead letter
        ("CE", Verdict.REFUSED),
        ("XX", Verdict.RETRY),  # not a Table 0008 code: no answer
    ],
)
def test_hl7_acknowledgment_codes(code: str, verdict: Verdict) -> None:
    assert outcome_of(HEADER + f"MSA|{code}|1\r".encode()).verdict is verdict


def test_reply_without_msa_is_no_answer() -> None:
    assert outcome_of(HEADER).verdict is Verdict.RETRY


def test_answer_code_msa3_and_err_segments_kept_with_any_terminator() -> None:
    reply = HEADER.replace(b"\r", b"\n") + b"MSA|AE|1|Required field missing\nERR|MSH^1^6^101\r\nERR|PID^1^3^101\n"
    outcome = outcome_of(reply)
    assert outcome.verdict is Verdict.REFUSED
    assert outcome.answer == Answer("AE", "Required field missing", "MSH^1^6^101\nPID^1^3^101")
    assert outcome.summary == "AE: Required field missing"
    assert outcome.brief == "AE"  # the log gets the code, never the text


@pytest.mark.parametrize(
    ("status", "operation", "verdict"),
    [
        (0x0000, "set", Verdict.DELIVERED),
        (0x0001, "set", Verdict.DELIVERED),  # warnings: the SCP took it
        (0x0107, "create", Verdict.DELIVERED),
        (0x0116, "set", Verdict.DELIVERED),
        (0x0111, "create", Verdict.DELIVERED),  # duplicate: an earlier attempt got through
        (0x0111, "set", Verdict.REFUSED),
        (0xA700, "create", Verdict.RETRY),  # out of resources: not now
        (0x0213, "set", Verdict.RETRY),  # resource limitation
        (0x0110, "set", Verdict.REFUSED),  # processing failure (e.g. A710: no longer updatable)
        (0x0112, "set", Verdict.REFUSED),
        (0x0106, "create", Verdict.REFUSED),
        (0x0122, "create", Verdict.REFUSED),
        (0xC000, "create", Verdict.REFUSED),
    ],
)
def test_dimse_statuses(status: int, operation: str, verdict: Verdict) -> None:
    assert verdict_of(status, operation) is verdict
