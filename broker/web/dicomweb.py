"""DICOMweb worklist and MPPS (PS3.18 chapter 14 Modality Scheduled Procedure Step and
chapter 15 Modality Performed Procedure Step): the broker's DIMSE services with an
HTTP face.

Nothing is decided here that the DIMSE side decides differently: a search becomes the
C-FIND identifier a modality would send (broker.mapping.dicomweb) and runs through the
same WorklistProvider and AnswerPlan; a Create or Update goes through the same F.7
checks (broker.mapping.mpps) and PPS Manager, so linking, worklist status, forwarding,
RAD-3 and audit are those of an N-CREATE / N-SET. What differs is the wire: DIMSE
statuses become HTTP status codes, with the DICOM status and Error Comment kept in the
response (a status payload, and a Warning header).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from broker.config import Service
from broker.dicom.policy import AssociationPolicy
from broker.dicom.refusals import dimse_refusal
from broker.dicom.status import (
    DUPLICATE_SOP_INSTANCE,
    INVALID_ATTRIBUTE_VALUE,
    MISSING_ATTRIBUTE,
    MISSING_ATTRIBUTE_VALUE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_SOP_INSTANCE,
    PROCESSING_FAILURE,
)
from broker.domain.audit import Action, Audited, AuditEvent, Outcome, Query, Requestor
from broker.domain.errors import DomainError, InvalidInput
from broker.errors import StoreUnavailable
from broker.mapping.dicomweb import (
    Search,
    json_answer,
    native_xml,
    read_includefield,
    read_json_dataset,
    read_search,
    read_xml_dataset,
)
from broker.mapping.mpps import merge, performed_step_from
from broker.mapping.mwl import AnswerPlan, query_from_identifier
from broker.web.auth import bearer
from broker.web.context import WebContext, context

log = logging.getLogger(__name__)

BASE = "/dicomweb"
SEARCH = f"{BASE}/modality-scheduled-procedure-steps"
MPPS = f"{BASE}/modality-performed-procedure-steps"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"
JSON_PARTS = f'multipart/related; type="{DICOM_JSON}"'
XML_PARTS = f'multipart/related; type="{DICOM_XML}"'
#: The web answer is always Unicode: the worklist answers in UTF-8 whatever the profile
#: prefers over DIMSE, then JSON / XML carry the text.
_UNICODE = ("ISO_IR 192",)

UNAVAILABLE = "the store is unavailable; try again later"

MODALITY_WORKLIST_FIND = UID("1.2.840.10008.5.1.4.31")

router = APIRouter(tags=["DICOMweb"])
Ctx = Annotated[WebContext, Depends(context)]


class NotAcceptable(Exception):
    """The Accept header names no media type this resource can answer in (406)."""


def _media_type(request: Request, *, one_dataset: bool = False) -> str:
    """The answer's media type (PS3.18 Tables 14.1.3-1 and 15.1.3-1; 8.7): JSON by
    default, XML, and both as multipart/related parts, the highest q-value winning. A
    NativeDicomModel document holds one dataset, so bare application/dicom+xml answers
    a list (the search) as multipart/related XML parts; a Retrieve (`one_dataset`)
    gets the one document."""
    charset = request.headers.get("accept-charset", "").lower()
    if charset and not any(c.strip().split(";")[0] in ("utf-8", "*") for c in charset.split(",")):
        raise NotAcceptable("the answer is UTF-8 only")
    accept = request.headers.get("accept", "") or "*/*"
    ranked = sorted(
        ((-quality, order, media) for order, (media, quality) in enumerate(_accepted(accept, one_dataset)) if quality),
    )
    if not ranked:
        raise NotAcceptable(f"answers are {DICOM_JSON}, {DICOM_XML}, {JSON_PARTS} or {XML_PARTS}")
    return ranked[0][2]


def _accepted(accept: str, one_dataset: bool) -> Iterator[tuple[str, float]]:
    """(media type this resource answers in, q) for each media range of an Accept header."""
    for media_range in accept.lower().split(","):
        kind, *parameters = (part.strip() for part in media_range.split(";"))
        named = dict(p.partition("=")[::2] for p in parameters)
        try:
            quality = float(named.get("q", "1"))
        except ValueError:
            quality = 0.0
        part_type = named.get("type", "").strip('"')
        if kind in (DICOM_JSON, "application/json", "application/*", "*/*"):
            yield DICOM_JSON, quality
        elif kind == DICOM_XML:
            yield (DICOM_XML if one_dataset else XML_PARTS), quality
        elif kind in ("multipart/related", "multipart/*") and part_type in (DICOM_JSON, DICOM_XML):
            yield (JSON_PARTS if part_type == DICOM_JSON else XML_PARTS), quality


def _answer(datasets: list[dict[str, Any]], media: str, headers: dict[str, str]) -> Response:
    """DICOM JSON datasets in the negotiated media type: one JSON array; one XML
    document; or one part per dataset (a one-dataset JSON array, or an XML document)."""
    if media == DICOM_JSON:
        body = json.dumps(datasets, ensure_ascii=False).encode()
        return Response(body, media_type=DICOM_JSON, headers=headers)
    if media == DICOM_XML:
        return Response(native_xml(datasets[0]), media_type=DICOM_XML, headers=headers)
    if media == JSON_PARTS:
        return _multipart([json.dumps([d], ensure_ascii=False).encode() for d in datasets], DICOM_JSON, headers)
    return _multipart([native_xml(d) for d in datasets], DICOM_XML, headers)


def _warning(request: Request, text: str) -> str:
    """`Warning: 299 <service>: <text>`, <service> being the base URI of the origin
    server (PS3.18 8.3.4: e.g. "299 <service>: The fuzzymatching parameter is not
    supported."); the text as RFC 7234 5.5 quotes it."""
    service = str(request.base_url).rstrip("/") + BASE
    return f'299 {service}: "{text}"'


class Modality:
    """Who a DICOMweb request acts as. These are modality services, not the admin API,
    so the DIMSE side's rules decide (broker.dicom.policy): a token bound to a calling AE
    title acts as that AE (its station rules, addresses and services); a request without
    a token is an unknown calling AE, let in only where `dicom.accept_unknown_callers`
    lets one in over DIMSE; a token bound to none (an operator's viewer) may use both."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Requestor:
        ctx: WebContext = request.app.state.context
        address = request.client.host if request.client else ""
        presented = credentials.credentials if credentials else ""
        calling = request.app.state.tokens.calling_ae(presented) if presented else ""
        if calling is None:
            raise HTTPException(401, "not a token of this broker", {"WWW-Authenticate": "Bearer"})
        if presented and not calling:
            return Requestor("", address)
        policy = AssociationPolicy(ctx.dicom)
        refused = policy.rejection(ctx.dicom.ae_title, calling, address)
        if refused is not None:
            raise HTTPException(401 if not presented else 403, refused.detail, {"WWW-Authenticate": "Bearer"})
        if self._service not in policy.services(calling):
            raise HTTPException(403, f"{calling} may not use the {self._service} service")
        return Requestor(calling, address)


WorklistClient = Annotated[Requestor, Depends(Modality("worklist"))]
MppsClient = Annotated[Requestor, Depends(Modality("mpps"))]


@router.get(SEARCH, responses={200: {"content": {DICOM_JSON: {}}}, 204: {}, 400: {}, 406: {}, 503: {}})
@router.get(f"{SEARCH}/", include_in_schema=False)  # PS3.18 B.36 writes the resource so
def search_worklist(ctx: Ctx, request: Request, who: WorklistClient) -> Response:
    """Search (PS3.18 14.4): `{attributeID}={value}` matching (keywords, tags, dotted
    sequence paths), includefield, fuzzymatching (case-insensitive PN), offset, limit.
    200 with the matches, 204 for none (14.4.3, 8.3.4.4.1), 400, 406, 503."""
    try:
        media = _media_type(request)
        search = read_search(list(request.query_params.multi_items()))
    except NotAcceptable as exc:
        return Response(status_code=406, headers={"Warning": _warning(request, str(exc))})
    except InvalidInput as exc:
        return Response(status_code=400, headers={"Warning": _warning(request, str(exc))})
    try:
        with ctx.worklist_turns.held():
            found, more = _page(ctx, search, who)
            answer = _answer(found, media, _search_warnings(request, search, more)) if found else None
    except StoreUnavailable:
        return Response(
            status_code=503, headers={"Warning": _warning(request, "the store is unavailable; try again later")}
        )
    except InvalidInput as exc:
        _audit_query(ctx, search, who, Outcome.MINOR_FAILURE)
        return Response(status_code=400, headers={"Warning": _warning(request, str(exc))})
    _audit_query(ctx, search, who, Outcome.SUCCESS)
    if answer is None:
        return Response(status_code=204, headers=_search_warnings(request, search, more))
    return answer


def _page(ctx: WebContext, search: Search, who: Requestor) -> tuple[list[dict[str, Any]], bool]:
    """One page of the C-FIND answer, as DICOM JSON written from the same values the
    C-FIND answer is written from (broker.mapping.dicomweb.json_answer)."""
    query = query_from_identifier(search.identifier, fold_case_names=search.fuzzy or ctx.profile.dicom.fold_case_names)
    entries, more = ctx.worklist.rad5_worklist_page(query, who.user_id, search.offset, search.limit)
    plan = AnswerPlan(None if search.everything else search.identifier, _UNICODE, ctx.profile.dicom.priorities)
    return [json_answer(plan.resolve(entry)) for entry in entries], more


def _search_warnings(request: Request, search: Search, more: bool) -> dict[str, str]:
    warnings = []
    if search.unsupported:
        warnings.append(
            _warning(request, "The following query parameters are not supported: " + ", ".join(search.unsupported))
        )
    if more:
        warnings.append(_warning(request, "There are additional results that can be requested (offset, limit)"))
    return {"Warning": ", ".join(warnings)} if warnings else {}


def _multipart(parts: list[bytes], media: str, headers: dict[str, str]) -> Response:
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Type: {media}\r\n\r\n".encode() + p + b"\r\n" for p in parts)
    body += f"--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="{media}"; boundary={boundary}'
    return Response(body, headers={**headers, "Content-Type": content_type})


def _audit_query(ctx: WebContext, search: Search, who: Requestor, outcome: Outcome) -> None:
    """The same Query audit message (DCM 110112) as a C-FIND: the identifier the
    parameters became, encoded as a modality would have sent it."""
    if ctx.audit is None:
        return
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, search.identifier)
    query = Query(MODALITY_WORKLIST_FIND, buffer.getvalue(), str(ExplicitVRLittleEndian))
    ctx.audit.record(AuditEvent(Audited.QUERY, Action.EXECUTE, datetime.now(), outcome, who, query=query))


# --- MPPS -----------------------------------------------------------------------------

#: DICOM failure → HTTP (PS3.18 15.4.3 / 15.5.3 / 15.6.3).
HTTP_STATUS = {
    DUPLICATE_SOP_INSTANCE: 409,
    NO_SUCH_SOP_INSTANCE: 404,
    PROCESSING_FAILURE: 409,  # e.g. 0xA710: the step may no longer be updated
    INVALID_ATTRIBUTE_VALUE: 400,
    MISSING_ATTRIBUTE: 400,
    MISSING_ATTRIBUTE_VALUE: 400,
    NO_SUCH_ATTRIBUTE: 400,
}


@dataclass(frozen=True)
class _Failure:
    http: int
    status: int
    comment: str
    error_id: int | None = None

    def response(self, request: Request) -> Response:
        """The status payload (Status, Error ID, Error Comment as DICOM JSON) and a Warning."""
        payload = Dataset()
        payload.add_new(0x00000900, "US", self.status)
        payload.add_new(0x00000902, "LO", self.comment[:64])
        if self.error_id is not None:
            payload.add_new(0x00000903, "US", self.error_id)
        error = f" (Error ID 0x{self.error_id:04X})" if self.error_id is not None else ""
        headers = {"Warning": _warning(request, f"DICOM status 0x{self.status:04X}{error}: {self.comment}")}
        body = json.dumps(payload.to_json_dict()).encode()
        return Response(body, status_code=self.http, media_type=DICOM_JSON, headers=headers)


def _failure(exc: Exception, *, update: bool) -> _Failure:
    """The HTTP status for a refusal: Tables 15.4.3-1, 15.5.3-1 and 15.6.3-1. An update
    naming attributes the step was not created with is a 409 (15.5.3.1, Note)."""
    if isinstance(exc, StoreUnavailable):
        return _Failure(503, PROCESSING_FAILURE, UNAVAILABLE)
    refusal = dimse_refusal(exc)
    if not isinstance(exc, DomainError):
        log.exception("DICOMweb MPPS request failed")
    http = 409 if update and refusal.status == NO_SUCH_ATTRIBUTE else HTTP_STATUS.get(refusal.status, 500)
    return _Failure(http, refusal.status, refusal.comment, refusal.error_id)


async def _body(request: Request) -> Dataset:
    """The request's one dataset, DICOM JSON or Native DICOM Model XML (its size is
    capped before it is read: broker.web.limits)."""
    content_type = request.headers.get("content-type", "")
    if DICOM_XML in content_type:
        return read_xml_dataset(await request.body())
    if DICOM_JSON in content_type or "application/json" in content_type:
        return read_json_dataset(await request.body())
    raise InvalidInput("Content-Type", f"must be {DICOM_JSON} or {DICOM_XML}")


@router.post(f"{MPPS}/{{uid}}", status_code=201, responses={200: {}, 201: {}, 400: {}, 404: {}, 409: {}, 503: {}})
async def create_or_update_mpps(ctx: Ctx, uid: str, request: Request, who: MppsClient) -> Response:
    """Create (PS3.18 15.4, N-CREATE semantics: 201 with Location) or, with `?update`,
    Update (15.5, N-SET semantics: 200)."""
    return await _create_or_update(ctx, uid, request, who, update="update" in request.query_params)


@router.post(f"{MPPS}/{{uid}}/update", include_in_schema=False)
async def update_mpps_as_annex_b_writes_it(ctx: Ctx, uid: str, request: Request, who: MppsClient) -> Response:
    """Update as PS3.18 Annex B.38 and B.39 write it (`…/{uid}/update`, where 15.5.1
    says `?update`): a client built from the examples is not turned away."""
    return await _create_or_update(ctx, uid, request, who, update=True)


async def _create_or_update(ctx: WebContext, uid: str, request: Request, who: Requestor, *, update: bool) -> Response:
    try:
        ds = await _body(request)
        if update:
            _update(ctx, uid, ds, who)
        else:
            _create(ctx, uid, ds, who)
    except Exception as exc:
        ctx.metrics.mpps_done("N-SET" if update else "N-CREATE", "refused")
        return _failure(exc, update=update).response(request)
    if update:
        return Response(status_code=200)
    return Response(status_code=201, headers={"Location": str(request.url.replace(query=""))})


def _create(ctx: WebContext, uid: str, ds: Dataset, who: Requestor) -> None:
    pps = performed_step_from(ds, uid, ctx.profile.mpps)
    ctx.pps_manager.rad6_modality_pps_in_progress(pps, who)
    ctx.metrics.mpps_done("N-CREATE", pps.status.value)


def _update(ctx: WebContext, uid: str, ds: Dataset, who: Requestor) -> None:
    pps = ctx.pps_manager.rad7_modality_pps_update(uid, lambda stored: merge(stored, ds, ctx.profile.mpps), who)
    ctx.metrics.mpps_done("N-SET", pps.status.value)


@router.get(f"{MPPS}/{{uid}}", responses={200: {"content": {DICOM_JSON: {}}}, 400: {}, 404: {}, 406: {}, 503: {}})
def retrieve_mpps(ctx: Ctx, uid: str, request: Request, who: MppsClient) -> Response:
    """Retrieve (PS3.18 15.6, N-GET semantics of the MPPS Retrieve SOP Class), with
    `includefield` (15.6.1.2: a list of attributes, or `all`; none: all)."""
    try:
        media = _media_type(request, one_dataset=True)
        included, unknown = read_includefield(request.query_params.getlist("includefield"))
    except NotAcceptable as exc:
        return Response(status_code=406, headers={"Warning": _warning(request, str(exc))})
    try:
        dataset = Dataset.from_json(ctx.pps_manager.retrieve(uid)).to_json_dict()  # in tag order
    except Exception as exc:
        return _failure(exc, update=False).response(request)
    if included is not None:
        dataset = {tag: element for tag, element in dataset.items() if tag in included}
    headers = {
        "Warning": _warning(request, "The following includefield values are not supported: " + ", ".join(unknown))
    }
    return _answer([dataset], media, headers if unknown else {})
