"""A second opinion on every HL7 message the broker writes: hl7apy (the project card's
HL7 library) parses it in STRICT mode against the message's own version (MSH-12) and
validates its structure, fields and table values; and a check of its own that MSH-3..7
and MSH-9..12 have values, as strict receivers (a widely used Java toolkit's) require.

hl7apy's reports that are wrong about HL7 are listed in FALSE_POSITIVES with the
reason; a report is forgiven only when its reason holds for the message at hand. What
is left is returned, so a test asserts an empty list and shows every problem at once.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Element, Message
from hl7apy.parser import parse_message

#: Why each kind of report is not a defect of the message.
FALSE_POSITIVES = {
    "choice": (
        "hl7apy checks a choice group (v2.3.1 ORM_O01_CHOICE, v2.5 ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP, "
        "ORR_O02_CHOICE: <OBR|RQD|RQ1|RXO|ODS|ODT>) like a sequence and reports every alternative not "
        "present as a missing required child; HL7 requires exactly one of them. Forgiven only when each "
        "such group holds exactly one child."
    ),
    "empty ORU observation group": (
        "v2.3.1 ORU^R01 is `{[ORC] OBR {[NTE]} {[OBX] {[NTE]}} {[CTI]}}`: the observation group repeats but "
        "everything in it is optional, so an order observation without OBX is valid; hl7apy wants an "
        "instance of the group, which ER7 cannot write without a segment."
    ),
    "empty first MSH-18 repetition": (
        "hl7apy checks every MSH-18 repetition against table 0211, the empty one too; HL7 v2.5 2.15.9.18 "
        "(and JAHIS) write `~ISO IR87`: the first repetition left empty means the default, ASCII."
    ),
}

#: Reports that are right about HL7 but are the profile's choice or the placer's data.
ACCEPTED_DEVIATIONS = {
    "coding system not in table 0396": (
        "CE-3/CWE-3 (OBR-4, IPC-6) carry the coding system as the placer sent it or the profile's code map "
        "names it (LOCAL, JJ1017): table 0396 is extensible (99zzz, L) and the broker relays, never invents, "
        "these codes."
    ),
    "UNICODE UTF-8 in v2.3.1": (
        "table 0211 of v2.3.1 has UNICODE but not `UNICODE UTF-8` (added in v2.5); the default profile "
        "declares its UTF-8 text with the later, unambiguous code, which the IHE SWF v2.3.1 receivers "
        "the broker meets accept (profile key status_out.charset / procedure_out.charset)."
    ),
}

_MISSING = re.compile(r"Missing required child (\w+)\.(\w+)")


def parse(text: str) -> Message:
    """hl7apy's STRICT parse, against the version the message names in MSH-12."""
    return parse_message(text.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)


def _report(message: Message) -> list[str]:
    """Every error and warning of hl7apy's validation (it raises only the first)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.txt"
        with contextlib.suppress(Exception):  # it raises the first; the report lists them all
            message.validate(report_file=str(path))
        return [line for line in path.read_text().splitlines() if line]


def _elements(element: Element, name: str) -> Iterator[Element]:
    for child in element.children:
        if child.name == name:
            yield child
        if child.classname == "Group":
            yield from _elements(child, name)


def _segment_names(message: Message) -> set[str]:
    return {line[:3] for line in message.to_er7().split("\r")}


def _choice_holds_one(message: Message, group: str) -> bool:
    found = list(_elements(message, group))
    return bool(found) and all(len(g.children) == 1 for g in found)


def _forgiven(message: Message, line: str, version: str) -> bool:
    missing = _MISSING.search(line)
    if missing and ("CHOICE" in missing.group(1) or "SUPPGRP" in missing.group(1)):
        return _choice_holds_one(message, missing.group(1))  # FALSE_POSITIVES["choice"]
    if line == "Error: Missing required child ORU_R01_ORDER_OBSERVATION.ORU_R01_OBSERVATION":
        return version == "2.3.1" and "OBX" not in _segment_names(message)  # "empty ORU observation group"
    if " not in table HL70396 in element " in line:
        return True  # ACCEPTED_DEVIATIONS["coding system not in table 0396"]
    if line == "Warning: Value  not in table HL70211 in element MSH.MSH_18":
        return True  # FALSE_POSITIVES["empty first MSH-18 repetition"]
    if line == "Warning: Value UNICODE UTF-8 not in table HL70211 in element MSH.MSH_18":
        return version == "2.3.1"  # ACCEPTED_DEVIATIONS["UNICODE UTF-8 in v2.3.1"]
    return False


def structure_problems(text: str) -> list[str]:
    """What hl7apy finds wrong with the message, less the documented false positives."""
    try:
        message = parse(text)
    except Exception as exc:  # the parse itself refused it
        return [f"parse: {type(exc).__name__}: {exc}"]
    version = msh_fields(text)[12]
    return [line for line in _report(message) if not _forgiven(message, line, version)]


def msh_fields(text: str) -> dict[int, str]:
    """MSH-n by HL7 number (MSH-1 is the field separator itself)."""
    line = text.replace("\n", "\r").split("\r", 1)[0]
    fields = line.split(line[3])
    return {1: line[3], **{n: value for n, value in enumerate(fields[1:], start=2)}}


#: What strict receivers require of every message (MSH-8 is optional).
REQUIRED_MSH = (3, 4, 5, 6, 7, 9, 10, 11, 12)


def missing_msh_fields(text: str) -> list[str]:
    fields = msh_fields(text)
    return [f"MSH-{n}" for n in REQUIRED_MSH if not fields.get(n, "")]


def problems(text: str) -> list[str]:
    """Both checks: empty means the message is well-formed for its version."""
    return missing_msh_fields(text) + structure_problems(text)
