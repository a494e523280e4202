"""De-identification of worklist identifiers (queries and answers) for a bundle sent to
a modality vendor: the Basic Application Level Confidentiality Profile of PS3.15
Annex E (Table E.1-1), with the Retain Device Identity Option (station AE titles and
names are what the vendor debugs) and either Retain Longitudinal Temporal Information
with Modified Dates (every date shifted by one number of days) or with Full Dates.

Replacements are consistent within one bundle (a keyed hash: the same name, ID or UID
gives the same pseudonym in every query, answer and worklist item of the bundle, and
another bundle's key gives others), and keep what matching needs: a name keeps its
component groups, its components and their script (a kanji name gets kanji, so the
answer's character set behaves as the original's); a date shift keeps ranges; a
wildcard that is a whole component (`DOE^*`) still works. What cannot keep matching
(a key the profile removes, a wildcard inside a replaced value) is reported.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import codes

#: Table E.1-1, Basic Profile column, for the attributes a worklist identifier carries
#: (read from the 2020 edition's table). D/Z: replaced by a dummy value (the broker's
#: consistent pseudonyms; a zero-length value for dates of birth and sex); U: replaced
#: by a consistent UID; X: removed.
BASIC_PROFILE = {
    "AccessionNumber": "Z", "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "ReferringPhysicianName": "Z", "PlacerOrderNumberImagingServiceRequest": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z", "StudyInstanceUID": "U", "ReferencedSOPInstanceUID": "U",
    "IssuerOfPatientID": "X", "AdmissionID": "X", "RequestingPhysician": "X", "RequestingService": "X",
    "RequestedProcedureID": "X", "RequestedProcedureDescription": "X", "ScheduledProcedureStepDescription": "X",
    "ScheduledPerformingPhysicianName": "X", "ReferencedStudySequence": "X", "ReferencedPatientSequence": "X",
    "ReasonForTheRequestedProcedure": "X", "RequestedProcedureComments": "X", "PatientComments": "X",
    "OtherPatientIDs": "X", "OtherPatientNames": "X", "PatientAddress": "X", "CurrentPatientLocation": "X",
    # Retain Device Identity Option: K.
    "ScheduledStationAETitle": "K", "ScheduledStationName": "K", "ScheduledProcedureStepLocation": "K",
    # Retain Longitudinal Temporal Information Options: K (full dates) or C (modified dates).
    "ScheduledProcedureStepStartDate": "C", "ScheduledProcedureStepStartTime": "K",
}  # fmt: skip
#: Not in Table E.1-1 and identifying no one: kept as they are. Anything else is removed.
KEPT = frozenset({
    "SpecificCharacterSet", "Modality", "ScheduledProcedureStepID", "ScheduledProcedureStepStatus",
    "RequestedProcedurePriority", "ScheduledProcedureStepSequence", "RequestedProcedureCodeSequence",
    "ScheduledProtocolCodeSequence", "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
    "ReferencedSOPClassUID",
})  # fmt: skip
WILDCARDS = frozenset("*?")


@dataclass(frozen=True)
class Applied:
    """The profile and options a bundle was made with (PS3.16 CID 7050 codes)."""

    profile: str
    options: list[str]
    codes: list[dict[str, str]]


def _code(concept: object) -> dict[str, str]:
    return {"CodeValue": concept.value, "CodingSchemeDesignator": concept.scheme_designator,  # type: ignore[attr-defined]
            "CodeMeaning": concept.meaning}  # type: ignore[attr-defined]  # fmt: skip


@dataclass
class Deidentifier:
    """One bundle's replacements: `key` makes the pseudonyms, `shift_days` the dates
    (0: full dates retained). Records each query key whose matching it could not keep."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    shift_days: int = field(default_factory=lambda: -(365 + secrets.randbelow(3 * 365)))
    lost: list[str] = field(default_factory=list)

    @property
    def applied(self) -> Applied:
        concepts = [codes.DCM.BasicApplicationConfidentialityProfile, codes.DCM.RetainDeviceIdentityOption]
        if self.shift_days:
            concepts.append(codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption)
        else:
            concepts.append(codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption)
        return Applied(concepts[0].meaning, [c.meaning for c in concepts[1:]], [_code(c) for c in concepts])

    def dataset(self, source: Dataset, *, query: bool = False) -> Dataset:
        """A de-identified copy of `source`. `query`: its values are matching keys; one
        whose matching cannot be kept is noted in `lost`. An element without a value
        carries no information: in a query (a return key asked) it stays."""
        out = Dataset()
        for element in source:
            keyword = element.keyword
            action = BASIC_PROFILE.get(keyword, "K" if keyword in KEPT else "X")
            if element.VR == "SQ":
                if action != "X" or (query and not any(_valued(item) for item in element.value)):
                    out.add_new(element.tag, "SQ", [self.dataset(item, query=query) for item in element.value])
                continue
            empty = element.value in (None, "", b"")
            if action == "X" and not (empty and query):
                if query and not empty:
                    self.lost.append(f"{keyword or element.tag}: removed by the profile")
                continue
            value = element.value if empty or action == "K" else self._value(keyword, element.VR, element.value, query)
            out.add_new(element.tag, element.VR, value)
        return out

    def _value(self, keyword: str, vr: str, value: object, query: bool) -> object:
        if keyword in ("PatientBirthDate", "PatientSex"):
            return ""
        values = [str(v) for v in value] if isinstance(value, MultiValue) else [str(value)]
        if vr == "DA":
            replaced = [self._dates(v) for v in values]
        elif vr == "UI":
            replaced = [self.uid(v) for v in values]
        else:
            replaced = [self._pattern(keyword, v, self.name if vr == "PN" else self.identifier, query) for v in values]
        return replaced if len(replaced) > 1 else replaced[0]

    def _pattern(self, keyword: str, text: str, replace: Callable[[str], str], query: bool) -> str:
        if text in ("", "*"):
            return text
        if query and WILDCARDS & set(text) and not _whole_wildcards(text):
            self.lost.append(f"{keyword}: a wildcard inside a replaced value")
        return replace(text)

    def uid(self, uid: str) -> str:
        """A UID under 2.25 (ISO/IEC 9834-8) from the keyed hash: consistent, unlinkable."""
        return "2.25." + str(int.from_bytes(self._digest("UI", uid)[:16], "big"))

    def identifier(self, text: str) -> str:
        """An ID of the same length (at most 16, the SH limit), letters and digits."""
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        digest = self._digest("ID", text)
        return "".join(alphabet[b % len(alphabet)] for b in digest[: max(4, min(len(text), 16))])

    def name(self, text: str) -> str:
        """A person name with the same groups and components, each replaced in its own
        script; a component that is only `*` stays (a wildcard query still works)."""
        return "=".join(
            "^".join(c if c in ("", "*") else self._component(c) for c in group.split("^")) for group in text.split("=")
        )

    def _component(self, text: str) -> str:
        pool = _pool(text)
        digest = self._digest("PN", text.casefold())
        return "".join(pool[b % len(pool)] for b in digest[: max(2, min(len(text), 12))])

    def _dates(self, text: str) -> str:
        """A DA value or range, each date shifted: the range keeps its length."""
        return "-".join(self._date(part) if part else "" for part in text.split("-"))

    def _date(self, text: str) -> str:
        try:
            day = datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            return ""  # not a date: nothing of it is kept
        return (day + timedelta(days=self.shift_days)).strftime("%Y%m%d")

    def moment(self, at: datetime) -> datetime:
        return at + timedelta(days=self.shift_days)

    def day(self, value: date) -> date:
        return value + timedelta(days=self.shift_days)

    def _digest(self, kind: str, text: str) -> bytes:
        return hmac.new(self.key, f"{kind}\x00{text}".encode(), hashlib.sha256).digest()


def _valued(item: Dataset) -> bool:
    return any(e.value not in (None, "", b"") if e.VR != "SQ" else any(map(_valued, e.value)) for e in item)


def _whole_wildcards(text: str) -> bool:
    """Whether every wildcard stands alone as a whole name component (`DOE^*`)."""
    return all(not (WILDCARDS & set(c)) or c == "*" for g in text.split("=") for c in g.split("^"))


_LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_POOLS = (
    (range(0xFF61, 0xFFA0), "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉ"),  # half-width katakana (IR 13)
    (range(0x30A0, 0x3100), "アイウエオカキクケコサシスセソタチツテトナニヌネノ"),  # katakana
    (range(0x3040, 0x30A0), "あいうえおかきくけこさしすせそたちつてとなにぬねの"),  # hiragana
    (range(0x4E00, 0xA000), "山川田中本村木林森井上下野原石岡松竹花子太郎一二三"),  # common kanji (JIS level 1)
    (range(0x00C0, 0x0100), "ÀÁÂÄÇÈÉÊËÍÎÏÑÓÔÖÚÛÜ"),  # Latin-1 letters
)


def _pool(text: str) -> str:
    """Letters of the script of `text`'s first non-ASCII character (ASCII: A-Z)."""
    for char in text:
        if not char.isascii():
            return next((pool for block, pool in _POOLS if ord(char) in block), _LATIN)
    return _LATIN
