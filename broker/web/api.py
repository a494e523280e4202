"""REST resources under /api. Reads go through the store's read queries; the repairs
an operator makes (replay, requeue, skip, reconcile) go through the actors and the
dead-letter desk, exactly as the CLI's do. GET needs a read token, everything else an
admin token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from broker.actors.pps_manager import Candidate
from broker.domain.audit import Requestor
from broker.domain.errors import DomainError, UnknownRecord
from broker.store import inbound_log, mpps_log, reads
from broker.store.inbound_log import LoggedMessage
from broker.store.mpps_log import PerformedRow, UnlinkedStep
from broker.store.outbox import OutboxEntry, OutboxHealth
from broker.store.reads import StepRow
from broker.web.auth import Authorized
from broker.web.context import WebContext, context
from broker.web.params import Accession, AccessionInPath, Day, MessageId, PatientId, StationAe, Uid
from broker.web.schemas import (
    OrderOut,
    PatientOut,
    ReconcileIn,
    ReplayOut,
    RequeueIn,
    RequeueOut,
    SkipOut,
)

router = APIRouter(prefix="/api", dependencies=[Authorized])
Ctx = Annotated[WebContext, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _refused(exc: DomainError) -> HTTPException:
    """Unknown records are 404; any other refusal by the workflow rules is 409."""
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, UnknownRecord) else status.HTTP_409_CONFLICT
    return HTTPException(code, str(exc))


@router.get("/patients", tags=["patients"])
def list_patients(ctx: Ctx, patient_id: PatientId = "", limit: Limit = 100) -> list[PatientOut]:
    return [PatientOut.model_validate(p) for p in reads.patients(ctx.engine, patient_id=patient_id, limit=limit)]


@router.get("/orders", tags=["orders"])
def list_orders(
    ctx: Ctx, accession_number: Accession = "", patient_id: PatientId = "", limit: Limit = 100
) -> list[OrderOut]:
    found = reads.orders(ctx.engine, accession_number=accession_number, patient_id=patient_id, limit=limit)
    return [OrderOut.model_validate(o) for o in found]


@router.get("/orders/{accession_number}", tags=["orders"], responses={404: {"description": "no such order"}})
def get_order(ctx: Ctx, accession_number: AccessionInPath) -> OrderOut:
    found = reads.orders(ctx.engine, accession_number=accession_number, limit=1)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no order with this accession number")
    return OrderOut.model_validate(found[0])


@router.get("/steps", tags=["scheduled steps"])
def list_steps(ctx: Ctx, day: Day = None, station_ae: StationAe = "", limit: Limit = 1000) -> list[StepRow]:
    """Scheduled steps by station and start; `day` keeps those of that day (and untimed ones)."""
    return reads.steps(ctx.engine, day=day, station_ae=station_ae, limit=limit)


@router.get("/mpps", tags=["mpps"])
def list_mpps(
    ctx: Ctx, status: Literal["", "IN PROGRESS", "COMPLETED", "DISCONTINUED"] = "", limit: Limit = 100
) -> list[PerformedRow]:
    return mpps_log.performed(ctx.engine, status=status, limit=limit)


@router.get("/mpps/exceptions", tags=["mpps"])
def list_exceptions(ctx: Ctx) -> list[UnlinkedStep]:
    """MPPS linked to no scheduled step (unscheduled): to reconcile with an order."""
    return mpps_log.exceptions(ctx.engine)


@router.get("/mpps/exceptions/{uid}/candidates", tags=["mpps"], responses={404: {}})
def list_candidates(ctx: Ctx, uid: Uid) -> list[Candidate]:
    """Orders of the MPPS's own patient, with steps on the worklist, it may be linked to."""
    try:
        return ctx.pps_manager.candidates(uid)
    except DomainError as exc:
        raise _refused(exc) from None


@router.post("/mpps/exceptions/{uid}/reconcile", tags=["mpps"], responses={404: {}, 409: {}})
def reconcile(ctx: Ctx, uid: Uid, body: ReconcileIn) -> PerformedRow:
    """Link an MPPS exception to the order it served; the order's steps follow it. An
    order of another patient is refused (409) unless `force` is set (audited)."""
    try:
        ctx.pps_manager.reconcile(
            uid, body.accession_number, body.requested_procedure_id, force=body.force, requestor=Requestor("web-api")
        )
    except DomainError as exc:
        raise _refused(exc) from None
    return get_mpps(ctx, uid)


@router.get("/mpps/{uid}", tags=["mpps"], responses={404: {"description": "no such MPPS"}})
def get_mpps(ctx: Ctx, uid: Uid) -> PerformedRow:
    found = mpps_log.performed(ctx.engine, uid=uid, limit=1)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no MPPS with this SOP Instance UID")
    return found[0]


@router.get("/messages", tags=["inbound messages"])
def list_messages(ctx: Ctx, refused: bool = False, limit: Limit = 100) -> list[LoggedMessage]:
    """The inbound HL7 log, newest first, each with the answer it got."""
    return inbound_log.recent(ctx.engine, limit=limit, refused_only=refused)


@router.post("/messages/{message_id}/replay", tags=["inbound messages"], responses={404: {}, 409: {}})
def replay(ctx: Ctx, message_id: MessageId, request: Request) -> ReplayOut:
    """Apply a refused message again once its cause is fixed; the new answer is kept; audited."""
    key = inbound_log.key_of(ctx.engine, message_id)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such message")
    try:
        record = ctx.intake.replay(*key, _operator(request))
    except DomainError as exc:
        raise _refused(exc) from None
    return ReplayOut(id=message_id, answer=record.answer, error_code=record.error_code, error=record.error)


@router.get("/outbox", tags=["outbox"])
def list_outbox(
    ctx: Ctx, state: Literal["pending", "leased", "dead", "sent", "skipped"] = "dead", limit: Limit = 100
) -> list[OutboxEntry]:
    """Outbound messages in one state (dead letters by default), oldest first, each
    with the destination's last answer (code, MSA-3 or Error Comment, ERR segments)."""
    return ctx.outbox.listing(state, limit)


@router.get("/outbox/health", tags=["outbox"])
def outbox_health(ctx: Ctx) -> OutboxHealth:
    return ctx.outbox.health(datetime.now())


@router.post("/outbox/requeue", tags=["outbox"])
def requeue(ctx: Ctx, body: RequeueIn, request: Request) -> RequeueOut:
    """Dead letters sent again, each before its order's later messages (which wait
    behind it until it is sent); audited. Ids that are no dead letter are left alone."""
    done = ctx.dead_letters.requeue(body.ids, _operator(request))
    return RequeueOut(requeued=len(done), ids=[e.id for e in done])


@router.post("/outbox/skip", tags=["outbox"])
def skip(ctx: Ctx, body: RequeueIn, request: Request) -> SkipOut:
    """Dead letters dropped for good: their orders' later messages go on; audited."""
    done = ctx.dead_letters.skip(body.ids, _operator(request))
    return SkipOut(skipped=len(done), ids=[e.id for e in done])


def _operator(request: Request) -> Requestor:
    """Who acted, for the audit: an admin of the API, from this address."""
    return Requestor("web-api admin", request.client.host if request.client else "")
