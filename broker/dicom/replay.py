"""`broker find --replay BUNDLE`: a bundle's queries sent again to any worklist SCP (this
broker, the vendor's test SCP with the bundle's worklist loaded, DCMTK wlmscpfs), each
reported as expected against got: the match count, the final status, and which answers
are missing, unexpected or differ (by attribute name: values are never printed, the
SCP replayed against may hold real patients)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from broker.dicom.bundle import FORMAT
from broker.dicom.mwl_scu import Peer, WorklistQueryError, find
from broker.dicom.query_text import flat

#: A bundle is a file a person mails: refuse anything far larger than one can be.
MAX_BUNDLE_BYTES = 64 << 20
_STEP_ID = "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID"


class BundleError(ValueError):
    """Not a bundle this broker wrote (or a damaged one)."""


@dataclass
class Replayed:
    number: int
    expected: int
    expected_status: str
    got: int = 0
    status: str = "0x0000"
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    differing: dict[str, list[str]] = field(default_factory=dict)
    matching_kept: bool = True

    @property
    def same(self) -> bool:
        return (self.expected, self.expected_status) == (self.got, self.status)

    def line(self) -> str:
        verdict = "same" if self.same else "DIFFERENT"
        text = (f"query {self.number}: expected {self.expected} ({self.expected_status}), "
                f"got {self.got} ({self.status}): {verdict}")  # fmt: skip
        if not self.matching_kept:
            text += " (a matching key was de-identified: counts may differ)"
        details = [f"  missing: {', '.join(self.missing)}"] if self.missing else []
        details += [f"  unexpected: {', '.join(self.unexpected)}"] if self.unexpected else []
        details += [f"  {label} differs in {', '.join(keys)}" for label, keys in self.differing.items()]
        return "\n".join([text, *details])


def load(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not JSON ({exc})") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleError(f"{path}: not a '{FORMAT}' file")
    return bundle


def replay(bundle: dict[str, Any], peer: Peer) -> Iterator[Replayed]:
    """Each query of `bundle` with an identifier, asked of `peer`, compared."""
    for number, query in enumerate(bundle.get("queries", []), 1):
        if not query.get("identifier"):
            continue
        outcome = Replayed(number, query["matches"], query["status"], matching_kept=query.get("matching_kept", True))
        try:
            answers = find(peer, Dataset.from_json(query["identifier"]))
        except WorklistQueryError as exc:
            outcome.status = f"0x{exc.status:04X}"
            yield outcome
            continue
        outcome.got = len(answers)
        _compare(outcome, [Dataset.from_json(a) for a in query.get("answers", [])], answers)
        yield outcome


def _compare(outcome: Replayed, expected: list[Dataset], got: list[Dataset]) -> None:
    """Answers paired by step ID (else by content). Only the kept answers are compared
    when the bundle holds fewer than were sent."""
    wanted = {_label(flat, n): flat for n, flat in enumerate(map(flat, expected))}
    found = {_label(flat, n): flat for n, flat in enumerate(map(flat, got))}
    outcome.missing = [label for label in wanted if label not in found]
    if len(expected) == outcome.expected:  # every answer kept: anything else is unexpected
        outcome.unexpected = [label for label in found if label not in wanted]
    for label in wanted.keys() & found.keys():
        keys = sorted(k for k in wanted[label].keys() | found[label].keys()
                      if wanted[label].get(k, "") != found[label].get(k, ""))  # fmt: skip
        if keys:
            outcome.differing[label] = keys


def _label(flat: dict[str, str], number: int) -> str:
    return f"step {flat[_STEP_ID]}" if flat.get(_STEP_ID) else f"answer #{number + 1}"
