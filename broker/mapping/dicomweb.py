"""DICOMweb (PS3.18) query parameters → the C-FIND identifier the worklist rules take,
and answer datasets → DICOM JSON (PS3.18 F.2) or the Native DICOM Model (PS3.19 A.1).

The web search is not a second matcher: its parameters become the same identifier a
modality sends over DIMSE, so Annex K / C.2.2.2 semantics (wildcards, ranges,
sequence matching, PN groups) are one implementation for both faces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from xml.etree import ElementTree

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from broker.domain.errors import InvalidInput, Problem
from broker.mapping.dicom_bytes import TEXT_VRS
from broker.mapping.mwl import Resolved
from broker.safe_xml import UnsafeXml, parse_xml
from broker.safe_xml import text as xml_text

#: PS3.18 query parameters that are not attribute matches.
_CONTROL = frozenset({"includefield", "fuzzymatching", "offset", "limit"})
_STEPS = "ScheduledProcedureStepSequence"

#: Returned when the query names no includefield (PS3.18 14.4: the worklist item's
#: IHE RAD-5 return keys, Specific Character Set aside: the web answer is Unicode).
DEFAULT_RETURN = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
    "AccessionNumber", "ReferringPhysicianName", "StudyInstanceUID", "RequestedProcedureID",
    "RequestedProcedureDescription", "RequestedProcedureCodeSequence", "RequestedProcedurePriority",
    f"{_STEPS}.ScheduledStationAETitle", f"{_STEPS}.ScheduledProcedureStepStartDate",
    f"{_STEPS}.ScheduledProcedureStepStartTime", f"{_STEPS}.Modality", f"{_STEPS}.ScheduledProcedureStepID",
    f"{_STEPS}.ScheduledProcedureStepDescription", f"{_STEPS}.ScheduledProtocolCodeSequence",
    f"{_STEPS}.ScheduledPerformingPhysicianName", f"{_STEPS}.ScheduledStationName",
    f"{_STEPS}.ScheduledProcedureStepLocation", f"{_STEPS}.ScheduledProcedureStepStatus",
)  # fmt: skip


@dataclass
class Search:
    """A search request read from its query parameters."""

    #: The C-FIND identifier: matching keys with values, return keys empty.
    identifier: Dataset
    #: `includefield=all`: every attribute the broker holds.
    everything: bool = False
    fuzzy: bool = False
    offset: int = 0
    limit: int | None = None
    #: Parameters the broker does not support (ignored, named in a Warning header).
    unsupported: list[str] = field(default_factory=list)


def read_search(parameters: Sequence[tuple[str, str]]) -> Search:
    """PS3.18 8.3.4 query parameters; a malformed value raises InvalidInput (400)."""
    search = Search(Dataset())
    included: list[str] = []
    for name, value in parameters:
        if name == "includefield":
            included += [part.strip() for part in value.split(",") if part.strip()]
        elif name == "fuzzymatching":
            search.fuzzy = _boolean(name, value)
        elif name in ("offset", "limit"):
            setattr(search, name, _count(name, value))
        elif not _set(search.identifier, name, value):
            search.unsupported.append(name)
    search.everything = "all" in included
    for path in [] if search.everything else [*DEFAULT_RETURN, *included]:
        if not _set(search.identifier, path, None):
            search.unsupported.append(f"includefield={path}")
    return search


def read_includefield(values: Sequence[str]) -> tuple[frozenset[str] | None, list[str]]:
    """A Retrieve's includefield values (PS3.18 15.6.1.2): the tags to return as DICOM
    JSON keys (None: every attribute, for `all` or no includefield), and the values
    that name no attribute (ignored, named in a Warning)."""
    named = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not named or "all" in named:
        return None, []
    tags = {part: _tag(part) for part in named}
    unknown = [part for part, tag in tags.items() if tag is None]
    return frozenset(f"{tag:08X}" for tag in tags.values() if tag is not None), unknown


def _boolean(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidInput(name, "must be true or false", Problem.MALFORMED)
    return value == "true"


def _count(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(name, "must be a whole number", Problem.MALFORMED)
    return int(value)


def _tag(part: str) -> BaseTag | None:
    """A keyword or an 8-digit hex tag (PS3.18 8.3.4.1 attributeID), if the dictionary knows it."""
    if len(part) == 8 and all(c in "0123456789abcdefABCDEF" for c in part):
        found = Tag(int(part, 16))
        return found if keyword_for_tag(found) else None
    number = tag_for_keyword(part)
    return Tag(number) if number is not None else None


def _set(ds: Dataset, path: str, value: str | None) -> bool:
    """Put `path` (`Keyword`, `ggggeeee`, or dotted through sequences) into the
    identifier: a match value, or (None) an empty return key. False: not a path the
    dictionary knows."""
    if path in _CONTROL:
        return False
    *outer, last = path.split(".")
    target = ds
    for part in outer:
        tag = _tag(part)
        if tag is None or dictionary_VR(tag) != "SQ":
            return False
        if tag not in target or not target[tag].value:
            target[tag] = DataElement(tag, "SQ", [Dataset()])
        target = target[tag].value[0]
    tag = _tag(last)
    if tag is None:
        return False
    vr = dictionary_VR(tag)
    if value is None:
        if tag not in target:
            target[tag] = DataElement(tag, vr, [] if vr == "SQ" else None)
        return True
    if vr == "SQ":
        return False
    # Not validated here: the matching rules judge the value (and refuse it as 0xA900
    # refuses it over DIMSE); pydicom's validation would log the value at WARNING.
    target[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)
    return True


# --- answers -----------------------------------------------------------------------

_NS = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_PN_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
#: How a value reads back from the C-FIND bytes (pydicom's reading, which the web
#: search must equal): single-valued VRs are not split on backslash; AE and UI values
#: lose their spaces on both sides, LO/SH/UC values trailing ones, others keep them.
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_STRIPPED = frozenset({"AE", "UI"})
_RSTRIPPED = frozenset({"LO", "SH", "UC"})


def json_answer(resolved: list[Resolved]) -> dict[str, Any]:
    """One worklist answer in the DICOM JSON Model (PS3.18 F.2), written from the values
    the C-FIND answer is written from (AnswerPlan.resolve): the same elements and values
    as the C-FIND bytes read back, without encoding and decoding each answer (that cost
    ~1.4 ms per item; tests/unit/test_mapping_dicomweb_answers.py holds the two equal)."""
    found: dict[str, Any] = {}
    for tag, vr, value in resolved:
        if isinstance(value, list):
            found[_KEYS[tag]] = {"vr": "SQ", "Value": [json_answer(item) for item in value]}
            continue
        values = _json_values(vr, value)
        found[_KEYS[tag]] = {"vr": vr, "Value": values} if values else {"vr": vr}
    return found


class _TagKeys(dict[int, str]):
    """Tag → its DICOM JSON key ((0010,0010) as "00100010"), each formatted once."""

    def __missing__(self, tag: int) -> str:
        key = self[tag] = f"{tag:08X}"
        return key


_KEYS = _TagKeys()


def _json_values(vr: str, text: str) -> list[Any]:
    text = text.rstrip(" \0")
    if not text:
        return []
    if vr not in TEXT_VRS and not text.isascii():
        text = text.encode("ascii", "replace").decode()  # as the C-FIND answer carries it
    if vr in _SINGLE_VALUED:
        return [text]
    if "\\" not in text:  # the common case, one value: no list to build and strip
        one = text.strip(" ") if vr in _STRIPPED else text
        return [_json_name(one)] if vr == "PN" else [one]
    values = text.split("\\")
    if vr in _STRIPPED:
        values = [v.strip(" ") for v in values]
    elif vr in _RSTRIPPED:
        values = [v.rstrip(" ") for v in values]
    return [_json_name(v) for v in values] if vr == "PN" else values


def _json_name(value: str) -> dict[str, str]:
    groups = value.split("=")
    while len(groups) > 1 and not groups[-1]:
        groups.pop()
    return dict(zip(_PN_GROUPS, groups, strict=False))  # a fourth group is not a name's


def native_xml(dataset: dict[str, Any]) -> bytes:
    """One DICOM JSON dataset as a PS3.19 NativeDicomModel document (UTF-8): JSON is the
    one model both answers are written from, so XML says exactly what JSON says."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="', _NS, '">']
    _xml_attributes(parts, dataset)
    parts.append("</NativeDicomModel>")
    return "".join(parts).encode()


def _xml_attributes(parts: list[str], dataset: dict[str, Any]) -> None:
    for tag, element in dataset.items():
        vr = element["vr"]
        keyword = _keyword(tag)
        named = f' keyword="{keyword}"' if keyword else ""
        parts.append(f'<DicomAttribute tag="{tag}" vr="{vr}"{named}>')
        for number, value in enumerate(element.get("Value", ()), start=1):
            if vr == "SQ":
                parts.append(f'<Item number="{number}">')
                _xml_attributes(parts, value)
                parts.append("</Item>")
            elif vr == "PN":
                _xml_person(parts, number, value)
            else:
                parts.append(f'<Value number="{number}">{xml_text(str(value))}</Value>')
        parts.append("</DicomAttribute>")


def _xml_person(parts: list[str], number: int, groups: dict[str, str]) -> None:
    """PN as its component groups, each split into the five components (PS3.19 A.1.5)."""
    parts.append(f'<PersonName number="{number}">')
    for group in _PN_GROUPS:
        if groups.get(group):
            parts.append(f"<{group}>")
            for part, text in zip(_PN_PARTS, groups[group].split("^"), strict=False):
                if text:
                    parts.append(f"<{part}>{xml_text(text)}</{part}>")
            parts.append(f"</{group}>")
    parts.append("</PersonName>")


@lru_cache(maxsize=1024)
def _keyword(tag: str) -> str:
    return str(keyword_for_tag(int(tag, 16)))


# --- request bodies --------------------------------------------------------------------

#: Nesting allowed in a request body (sequences in sequences): far beyond any MPPS, far
#: below what a parser's recursion could be made to choke on.
MAX_DEPTH = 16
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})


def read_json_dataset(raw: bytes) -> Dataset:
    """One DICOM JSON dataset (PS3.18 F.2; a one-element array too). Nesting is
    measured before parsing, so a hostile body costs one pass over its bytes."""
    if _json_depth(raw) > MAX_DEPTH:
        raise InvalidInput("body", f"nested deeper than {MAX_DEPTH}")
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", "not JSON") from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise InvalidInput("body", "one DICOM JSON dataset is expected")
    return _from_json(data)


def _json_depth(raw: bytes) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _from_json(data: dict[str, Any]) -> Dataset:
    try:
        return Dataset.from_json(data)
    except Exception:
        raise InvalidInput("body", "not a DICOM JSON dataset") from None


def read_xml_dataset(raw: bytes) -> Dataset:
    """One PS3.19 NativeDicomModel document, read by broker.safe_xml: DTDs refused, so no
    entity is ever expanded or fetched (XXE, entity bombs), and the element depth bounded
    while parsing (DicomAttribute and Item per sequence level, PersonName groups below)."""
    try:
        root = parse_xml(raw, max_depth=2 * MAX_DEPTH + 8)
    except UnsafeXml as exc:
        raise InvalidInput("body", f"not a plain XML document: {exc}") from None
    if root.tag != f"{{{_NS}}}NativeDicomModel":
        raise InvalidInput("body", "not a NativeDicomModel document")
    return _from_json(_xml_to_json(root, 0))


def _xml_to_json(node: ElementTree.Element, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise InvalidInput("body", f"nested deeper than {MAX_DEPTH}")
    found: dict[str, Any] = {}
    for attribute in node.findall(f"{{{_NS}}}DicomAttribute"):
        vr = attribute.get("vr", "")
        element: dict[str, Any] = {"vr": vr}
        if vr == "SQ":
            element["Value"] = [_xml_to_json(item, depth + 1) for item in attribute.findall(f"{{{_NS}}}Item")]
        elif vr == "PN":
            element["Value"] = [_xml_name(person) for person in attribute.findall(f"{{{_NS}}}PersonName")]
        else:
            element["Value"] = [_xml_value(vr, value.text or "") for value in attribute.findall(f"{{{_NS}}}Value")]
        if not element["Value"]:
            del element["Value"]
        found[attribute.get("tag", "").upper()] = element
    return found


def _xml_value(vr: str, text: str) -> object:
    if vr not in _NUMERIC_VRS:
        return text
    try:
        return float(text) if vr in ("FL", "FD") else int(text)
    except ValueError:
        raise InvalidInput("body", f"{text!r} is not a number for VR {vr}") from None


def _xml_name(person: ElementTree.Element) -> dict[str, str]:
    groups = {}
    for group in _PN_GROUPS:
        node = person.find(f"{{{_NS}}}{group}")
        if node is not None:
            parts = [node.findtext(f"{{{_NS}}}{part}") or "" for part in _PN_PARTS]
            groups[group] = "^".join(parts).rstrip("^")
    return groups
