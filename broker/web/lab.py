"""The worklist lab over HTTP: what a calling AE would get and why an item is not
returned, computed by the broker's own matching (WorklistProvider.explain), for the
operator asked "the modality shows nothing"."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel
from pydicom.dataset import Dataset

from broker.actors.worklist_provider import Explained
from broker.dicom.bundle import export
from broker.dicom.deid import Deidentifier
from broker.dicom.mwl_scu import WorklistKeys, date_key, identifier
from broker.domain.errors import InvalidInput
from broker.domain.query_log import LoggedQuery
from broker.mapping.mwl import query_from_identifier
from broker.web.auth import Authorized
from broker.web.context import WebContext, context

router = APIRouter(prefix="/api/worklist", dependencies=[Authorized], tags=["worklist lab"])
Ctx = Annotated[WebContext, Depends(context)]
Key = Annotated[str, Query(max_length=64)]


class LoggedQueryOut(BaseModel):
    at: datetime
    calling_ae: str
    keys: dict[str, str]
    matches: int
    seconds: float
    status: str

    @classmethod
    def of(cls, q: LoggedQuery) -> LoggedQueryOut:
        return cls(at=q.at, calling_ae=q.calling_ae, keys=dict(q.keys), matches=q.matches, seconds=q.seconds,
                   status=f"0x{q.status:04X}")  # fmt: skip


@router.get("/queries")
def recent_queries(ctx: Ctx, calling_ae: Annotated[str | None, Query(max_length=16)] = None) -> list[LoggedQueryOut]:
    """The last worklist queries (per calling AE, bounded, since the broker started):
    what a station asked, how many items it got, how long it waited, the final status."""
    return [LoggedQueryOut.of(q) for q in ctx.queries.recent(calling_ae)]


class ExclusionOut(BaseModel):
    key: str
    asked: str
    found: str


class ExplainedOut(BaseModel):
    patient_name: str
    patient_id: str
    accession_number: str
    modality: str
    station_ae: str
    start: datetime | None
    status: str
    returned: bool
    excluded_by: list[ExclusionOut]

    @classmethod
    def of(cls, item: Explained) -> ExplainedOut:
        e = item.entry
        return cls(
            patient_name=str(e.patient_name), patient_id=e.patient_id, accession_number=e.accession_number,
            modality=e.modality, station_ae=e.station_ae, start=e.start, status=e.status.value,
            returned=not item.excluded_by,
            excluded_by=[ExclusionOut(key=r.key, asked=r.asked, found=r.found) for r in item.excluded_by],
        )  # fmt: skip


def worklist_keys(
    station: Key = "", modality: Key = "", date: Key = "", patient_id: Key = "", accession: Key = "",
    patient_name: Key = "",
) -> WorklistKeys:  # fmt: skip
    """The usual RAD-5 matching keys as query parameters (the explain API, the lab page)."""
    return WorklistKeys(station, modality, date, patient_id, accession, patient_name)


Keys = Annotated[WorklistKeys, Depends(worklist_keys)]


def keys_identifier(keys: WorklistKeys) -> Dataset:
    """The C-FIND identifier of `keys`, the date read as `broker find --date` reads it."""
    return identifier(replace(keys, date=date_key(keys.date) if keys.date else ""))


@router.get("/explain", responses={422: {"description": "a key value the matching rules refuse"}})
def explain(ctx: Ctx, calling_ae: Annotated[str, Query(min_length=1, max_length=16)], keys: Keys) -> list[ExplainedOut]:
    """Every step of the asked days (and the day either side) as `calling_ae` would see
    it: returned, or the key that excluded it (station, date, modality, status, the
    station-only rule...)."""
    try:
        query = query_from_identifier(keys_identifier(keys), fold_case_names=ctx.profile.dicom.fold_case_names)
    except (ValueError, InvalidInput) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return [ExplainedOut.of(item) for item in ctx.worklist.explain(query, calling_ae)]


@router.get("/bundle", response_class=Response, responses={200: {"content": {"application/json": {}}}})
def bundle(
    ctx: Ctx,
    calling_ae: Annotated[str, Query(min_length=1, max_length=16)],
    dates: Literal["shift", "keep"] = "shift",
) -> Response:
    """A station's captured queries and answers, and the worklist it could see on the
    asked days, de-identified by the PS3.15 Annex E Basic Profile (the file lists the
    profile and options) for its modality vendor; replay it with `broker find --replay`."""
    deid = Deidentifier() if dates == "shift" else Deidentifier(shift_days=0)
    found = export(calling_ae, ctx.queries.recent(calling_ae), ctx.worklist, ctx.profile, deid)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", calling_ae)
    body = json.dumps(found, ensure_ascii=False, indent=1).encode()
    disposition = f'attachment; filename="worklist-bundle-{name}.json"'
    return Response(body, media_type="application/json", headers={"Content-Disposition": disposition})
