"""The operator's desk: what needs a decision (MPPS to reconcile, dead letters, refused
HL7 messages, orders entered by hand) and the repairs, made from the page by a signed-in
administrator. Each repair is shown first (what it touches, side by side with what it
is set against), confirmed on a page of its own, posted with the form token
(`broker.web.forms`), done by the same actor or desk the API and CLI use, and audited
with the administrator's token name as requestor. A read token sees none of it (403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse

from broker.domain.errors import DomainError
from broker.mapping.charsets import decode
from broker.store import desk, inbound_log, mpps_log, reads
from broker.store.desk import PerformedSummary
from broker.store.outbox import OutboxEntry
from broker.web.context import WebContext, context
from broker.web.forms import FIELD, Operator, admin_form, require_page_admin
from broker.web.page import render
from broker.web.params import MessageId, Uid

router = APIRouter(prefix="/desk", include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Operator, Depends(require_page_admin)]
#: Dead letters the desk lists (oldest first); more wait for the next page view.
DEAD_LETTERS = 200


def form_page(template: str, operator: Operator, action: str, status_code: int = 200, **values: object) -> HTMLResponse:
    """A page that shows an action and posts it, with the form token, to `action`."""
    return render(template, status_code, action=action, form_field=FIELD, form_token=operator.form_token, **values)


@router.get("")
def desk_page(ctx: Ctx, operator: Admin) -> HTMLResponse:
    return render(
        "desk.html",
        exceptions=mpps_log.exceptions(ctx.engine),
        dead=ctx.outbox.listing("dead", DEAD_LETTERS),
        refused=inbound_log.recent(ctx.engine, limit=50, refused_only=True),
        orders=[o for o in reads.orders(ctx.engine, limit=50) if o.active],
    )


# MPPS exceptions: choose among the candidate orders of the same patient, confirm, link.


def _performed(ctx: WebContext, uid: str) -> PerformedSummary:
    found = desk.performed(ctx.engine, uid)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no MPPS with this SOP Instance UID")
    return found


@router.get("/mpps/{uid}")
def reconcile_choice(ctx: Ctx, uid: Uid, operator: Admin) -> HTMLResponse:
    """The MPPS beside every candidate: name, ID, birth date, accession, procedure, time."""
    try:
        candidates = ctx.pps_manager.candidates(uid)
    except DomainError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return render("reconcile.html", mpps=_performed(ctx, uid), candidates=candidates)


@router.get("/mpps/{uid}/reconcile")
def reconcile_confirm(
    ctx: Ctx,
    uid: Uid,
    operator: Admin,
    accession: Annotated[str, Query(min_length=1, max_length=64)],
) -> HTMLResponse:
    chosen = [c for c in ctx.pps_manager.candidates(uid) if c.accession_number == accession]
    if not chosen:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "that order is no candidate for this MPPS")
    action = f"/desk/mpps/{uid}/reconcile"
    return form_page("reconcile_confirm.html", operator, action, mpps=_performed(ctx, uid), candidate=chosen[0])


@router.post("/mpps/{uid}/reconcile")
async def reconcile(request: Request, ctx: Ctx, uid: Uid) -> HTMLResponse:
    operator, fields = await admin_form(request)
    accession = fields.get("accession", "")
    try:
        ctx.pps_manager.reconcile(uid, accession, requestor=operator.requestor)
    except DomainError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return render("done.html", title=f"MPPS linked to order {accession}", mpps=_performed(ctx, uid))


# Dead letters: the destination, its answer and error; requeue or skip.


def _dead_letter(ctx: WebContext, message_id: int) -> OutboxEntry:
    found = [e for e in ctx.outbox.listing("dead", DEAD_LETTERS) if e.id == message_id]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no dead letter with this id")
    return found[0]


_OUTBOX_ACTS = {
    "requeue": ("Requeue", "It is sent again, then the later messages of its order follow."),
    "skip": ("Skip", "It is dropped for good; the later messages of its order go on without it."),
}


@router.get("/outbox/{message_id}/{act}")
def outbox_confirm(ctx: Ctx, message_id: MessageId, act: str, operator: Admin) -> HTMLResponse:
    label, explain = _outbox_act(act)
    entry = _dead_letter(ctx, message_id)
    title, action = f"{label} dead letter {message_id}?", f"/desk/outbox/{message_id}/{act}"
    return form_page("outbox_confirm.html", operator, action, entry=entry, title=title, explain=explain, button=label)


@router.post("/outbox/{message_id}/{act}")
async def outbox_act(request: Request, ctx: Ctx, message_id: MessageId, act: str) -> HTMLResponse:
    operator, _ = await admin_form(request)
    label, _ = _outbox_act(act)
    entry = _dead_letter(ctx, message_id)
    done = (ctx.dead_letters.requeue if act == "requeue" else ctx.dead_letters.skip)([message_id], operator.requestor)
    title = f"{label}: message {message_id} to {entry.destination}" if done else "Nothing done: no longer a dead letter"
    return render("done.html", title=title)


def _outbox_act(act: str) -> tuple[str, str]:
    if act not in _OUTBOX_ACTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such action")
    return _OUTBOX_ACTS[act]


# Refused HL7 messages: the original ERR and text; replay once the cause is fixed.


def _message(ctx: WebContext, message_id: int) -> desk.RefusedMessage:
    found = desk.message(ctx.engine, message_id)
    if found is None or found.answer == "AA":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no refused message with this id")
    return found


def visible(raw: bytes, ctx: WebContext) -> list[str]:
    """The message as text, one segment a line, in its declared character set (else
    Latin-1), every other control character shown as `\\xNN`: never interpreted."""
    try:
        text = decode(raw, ctx.profile.hl7_in.charsets)
    except DomainError:
        text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return ["".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line) for line in lines if line]


@router.get("/messages/{message_id}/replay")
def replay_confirm(ctx: Ctx, message_id: MessageId, operator: Admin) -> HTMLResponse:
    message = _message(ctx, message_id)
    action = f"/desk/messages/{message_id}/replay"
    return form_page("replay_confirm.html", operator, action, message=message, lines=visible(message.raw, ctx))


@router.post("/messages/{message_id}/replay")
async def replay(request: Request, ctx: Ctx, message_id: MessageId) -> HTMLResponse:
    operator, _ = await admin_form(request)
    message = _message(ctx, message_id)
    try:
        record = ctx.intake.replay(message.sender, message.control_id, operator.requestor)
    except DomainError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    answered = f"{record.answer} {record.error_code} {record.error_location}".strip()
    return render("done.html", title=f"Message {message_id} replayed: {answered}", error=record.error)
