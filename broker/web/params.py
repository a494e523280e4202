"""Bounds on what a URL may ask for, so an out-of-range value is answered 422 by
validation instead of failing deep inside (a date at the end of the calendar, an id
too large for a database integer, a key longer than any stored value).

The lengths are DICOM's: LO (64) for patient IDs, SH (16) for accession numbers and
AE titles, UI (64) for UIDs — with room for HL7 senders that send longer accession
numbers (64). A day is one the page can step back and forward from."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Path, Query

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9999, 12, 30)
#: Database ids are signed 64-bit integers.
MAX_ID = 2**63 - 1

Day = Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)]
PatientId = Annotated[str, Query(max_length=64)]
Accession = Annotated[str, Query(max_length=64)]
StationAe = Annotated[str, Query(max_length=16)]
Uid = Annotated[str, Path(max_length=64)]
AccessionInPath = Annotated[str, Path(max_length=64)]
MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]
