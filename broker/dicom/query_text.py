"""A worklist query as an operator pastes it into the worklist lab, and back: one key a
line, `Keyword=value` (a matching key) or `Keyword` (a return key), sequence items as
`Sequence.Keyword` or findscu's `Sequence[0].Keyword`, a bare `Sequence` asking for the
whole item; or a DICOM JSON object (PS3.18 F.2), as DICOMweb and dcmjs write it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

#: A pasted query is typed or copied, never large.
MAX_TEXT = 8192
_LINE = re.compile(r"^(?:(?P<seq>[A-Za-z]+)(?:\[0\])?\.)?(?P<key>[A-Za-z]+)\s*(?:=(?P<value>.*))?$")


class QueryTextError(ValueError):
    """The pasted text is not a query: says which line or what, for the page to show."""


def parse(text: str) -> Dataset:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise QueryTextError(f"a query of at most {MAX_TEXT} characters")
    return _json(text) if text.startswith("{") else _lines(text)


def _json(text: str) -> Dataset:
    if "BulkDataURI" in text or "InlineBinary" in text:
        raise QueryTextError("binary values have no place in a worklist query")
    try:
        return Dataset.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise QueryTextError(f"not a DICOM JSON object: {exc}") from None


def _lines(text: str) -> Dataset:
    ds = Dataset()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise QueryTextError(f"line {number}: use Keyword=value, Keyword, or Sequence.Keyword=value")
        sequence, keyword, value = match["seq"], match["key"], (match["value"] or "").strip()
        target = _item(ds, sequence, number) if sequence else ds
        _set(target, keyword, value, number)
    return ds


def _item(ds: Dataset, sequence: str, number: int) -> Dataset:
    if _vr(sequence, number) != "SQ":
        raise QueryTextError(f"line {number}: {sequence} is not a sequence")
    if sequence not in ds or not ds[sequence].value:
        ds.add_new(sequence, "SQ", [Dataset()])
    item: Dataset = ds[sequence].value[0]
    return item


def _set(ds: Dataset, keyword: str, value: str, number: int) -> None:
    vr = _vr(keyword, number)
    if keyword in ds and vr != "SQ":
        raise QueryTextError(f"line {number}: {keyword} a second time")
    if vr == "SQ":
        if value:
            raise QueryTextError(f"line {number}: a sequence takes no value; name its keys as {keyword}.Keyword")
        if keyword not in ds:
            ds.add_new(keyword, "SQ", [])
        return
    ds.add_new(keyword, vr, value)


def _vr(keyword: str, number: int) -> str:
    if tag_for_keyword(keyword) is None:
        raise QueryTextError(f"line {number}: {keyword} is no DICOM keyword")
    return str(dictionary_VR(keyword))


def flat(ds: Dataset, prefix: str = "", *, empty: bool = False) -> dict[str, str]:
    """keyword (or `Sequence[i].Keyword`) → value as text, the character set left out
    (it says how the text was written, not what it says); `empty`: keys without a value too."""
    found: dict[str, str] = {}
    for element in ds:
        name = prefix + (element.keyword or str(element.tag))
        if element.keyword == "SpecificCharacterSet":
            continue
        if element.VR == "SQ":
            if empty and not element.value:
                found[name] = ""
            for index, item in enumerate(element.value):
                found |= flat(item, f"{name}[{index}].", empty=empty)
        elif empty or element.value not in (None, ""):
            found[name] = "" if element.value is None else str(element.value)
    return found


def as_text(keys: Mapping[str, str]) -> str:
    """Keys as `parse` reads them back."""
    return "\n".join(f"{key}={value}" if value else key for key, value in keys.items())
