"""DICOM value representations (PS3.5 6.2, Table 6.2-1) of what an HL7 message puts
on the worklist, checked at intake.

A value the worklist could not carry as its VR says is refused (AE, field named) when
the message arrives, not cut, not left for a modality to choke on: the sender can fix
it, a modality cannot. Control characters are refused earlier, on the whole decoded
text (hl7_text.check_text); HL7 escapes (`\\X0D\\`) can still produce them in a value,
so the repertoire checks here refuse them too.
"""

from __future__ import annotations

import re
from datetime import date

from broker.domain.errors import InvalidInput, Problem

#: Maximum length in characters (PN: per component group).
_MAX = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "UI": 64, "DA": 8}
#: C0/C1 controls and DEL: no text VR holds them once decoded (ESC only inside the
#: ISO 2022 encoding, which is not the decoded value).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CS = re.compile("[A-Z0-9 _]*")
_UI = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def _refuse(location: str, reason: str) -> InvalidInput:
    return InvalidInput(location, reason, Problem.MALFORMED)


def _text(value: str, vr: str, location: str) -> None:
    if len(value) > _MAX[vr]:
        raise _refuse(location, f"longer than {_MAX[vr]} characters ({vr})")
    if _CONTROL.search(value):
        raise _refuse(location, f"control character in a {vr} value")
    if "\\" in value:  # the DICOM value separator
        raise _refuse(location, f"backslash in a {vr} value")


def _person_name(value: str, location: str) -> None:
    groups = value.split("=")
    if len(groups) > 3:
        raise _refuse(location, "more than three PN component groups")
    for group in groups:
        _text(group, "PN", location)
        if group.count("^") > 4:
            raise _refuse(location, "more than five PN components")


def check(value: str, vr: str, location: str) -> None:
    """Refuse `value` (AE 102 at `location`) unless it is a valid `vr` value; empty is
    always valid (the Type 2 attributes take it; required ones are checked as such)."""
    if not value:
        return
    if vr == "PN":
        _person_name(value, location)
        return
    _text(value, vr, location)
    if vr == "CS" and not _CS.fullmatch(value):
        raise _refuse(location, "a CS value holds only A-Z, 0-9, space and underscore")
    if vr == "AE" and (not value.isascii() or not value.strip()):
        raise _refuse(location, "an AE title is ASCII and not only spaces")
    if vr == "UI" and not _UI.fullmatch(value):
        raise _refuse(location, "not a UID (digits and dots, no leading zeros)")
    if vr == "DA":
        try:
            if not value.isdigit() or len(value) != 8:
                raise ValueError(value)
            date(int(value[:4]), int(value[4:6]), int(value[6:]))  # as strptime %Y%m%d, a tenth of its cost
        except ValueError:
            raise _refuse(location, "not a real date (YYYYMMDD)") from None
