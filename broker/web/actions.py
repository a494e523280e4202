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
from broker.web.i18n import phrase
from broker.web.page import render
from broker.web.params import MessageId, Uid

router = APIRouter(prefix="/desk", include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Operator, Depends(require_page_admin)]
#: Dead letters the desk lists (oldest first); more wait for the next page view.
DEAD_LETTERS = 200


def form_page(
    request: Request, template: str, operator: Operator, action: str, status_code: int = 200, **values: object
) -> HTMLResponse:
    """A page that shows an action and posts it, with the form token, to `action`."""
    form = {"action": action, "form_field": FIELD, "form_token": operator.form_token}
    return render(request, template, status_code, **form, **values)


@router.get("")
def desk_page(request: Request, ctx: Ctx, operator: Admin) -> HTMLResponse:
    return render(
        request,
        "desk.html",
        exceptions=mpps_log.exceptions(ctx.engine),
        dead=ctx.outbox.listing("dead", DEAD_LETTERS),
        refused=inbound_log.recent(ctx.engine, limit=50, refused_only=True),
        orders=[o for o in reads.orders(ctx.engine, limit=50) if o.active],
    )


# MPPS exceptions: choose among the candidate orders of the same patient, confirm, link.


def _performed(request: Request, ctx: WebContext, uid: str) -> PerformedSummary:
    found = desk.performed(ctx.engine, uid)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, phrase(request, "desk.no_mpps"))
    return found


@router.get("/mpps/{uid}")
def reconcile_choice(request: Request, ctx: Ctx, uid: Uid, operator: Admin) -> HTMLResponse:
    """The MPPS beside every candidate: name, ID, birth date, accession, procedure, time."""
    try:
        candidates = ctx.pps_manager.candidates(uid)
    except DomainError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return render(request, "reconcile.html", mpps=_performed(request, ctx, uid), candidates=candidates)


@router.get("/mpps/{uid}/reconcile")
def reconcile_confirm(
    request: Request,
    ctx: Ctx,
    uid: Uid,
    operator: Admin,
    accession: Annotated[str, Query(min_length=1, max_length=64)],
) -> HTMLResponse:
    chosen = [c for c in ctx.pps_manager.candidates(uid) if c.accession_number == accession]
    if not chosen:
        raise HTTPException(status.HTTP_404_NOT_FOUND, phrase(request, "desk.no_candidate"))
    action, mpps = f"/desk/mpps/{uid}/reconcile", _performed(request, ctx, uid)
    return form_page(request, "reconcile_confirm.html", operator, action, mpps=mpps, candidate=chosen[0])


@router.post("/mpps/{uid}/reconcile")
async def reconcile(request: Request, ctx: Ctx, uid: Uid) -> HTMLResponse:
    operator, fields = await admin_form(request)
    accession = fields.get("accession", "")
    try:
        ctx.pps_manager.reconcile(uid, accession, requestor=operator.requestor)
    except DomainError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    title = phrase(request, "done.linked", accession=accession)
    return render(request, "done.html", title=title, mpps=_performed(request, ctx, uid))


# Dead letters: the destination, its answer and error; requeue or skip.


def _dead_letter(request: Request, ctx: WebContext, message_id: int) -> OutboxEntry:
    found = [e for e in ctx.outbox.listing("dead", DEAD_LETTERS) if e.id == message_id]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, phrase(request, "desk.no_dead_letter"))
    return found[0]


#: What a dead letter's repairs are called (catalog keys `outbox.<act>...`).
_OUTBOX_ACTS = ("requeue", "skip")


@router.get("/outbox/{message_id}/{act}")
def outbox_confirm(request: Request, ctx: Ctx, message_id: MessageId, act: str, operator: Admin) -> HTMLResponse:
    _outbox_act(request, act)
    entry = _dead_letter(request, ctx, message_id)
    title, action = phrase(request, f"outbox.{act}.title", id=message_id), f"/desk/outbox/{message_id}/{act}"
    explain, button = phrase(request, f"outbox.{act}.explain"), phrase(request, f"outbox.{act}")
    return form_page(
        request, "outbox_confirm.html", operator, action, entry=entry, title=title, explain=explain, button=button
    )


@router.post("/outbox/{message_id}/{act}")
async def outbox_act(request: Request, ctx: Ctx, message_id: MessageId, act: str) -> HTMLResponse:
    operator, _ = await admin_form(request)
    _outbox_act(request, act)
    entry = _dead_letter(request, ctx, message_id)
    done = (ctx.dead_letters.requeue if act == "requeue" else ctx.dead_letters.skip)([message_id], operator.requestor)
    key = f"outbox.{act}.done" if done else "outbox.nothing_done"
    return render(request, "done.html", title=phrase(request, key, id=message_id, destination=entry.destination))


def _outbox_act(request: Request, act: str) -> None:
    if act not in _OUTBOX_ACTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, phrase(request, "desk.no_such_action"))


# Refused HL7 messages: the original ERR and text; replay once the cause is fixed.


def _message(request: Request, ctx: WebContext, message_id: int) -> desk.RefusedMessage:
    found = desk.message(ctx.engine, message_id)
    if found is None or found.answer == "AA":
        raise HTTPException(status.HTTP_404_NOT_FOUND, phrase(request, "desk.no_refused_message"))
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
def replay_confirm(request: Request, ctx: Ctx, message_id: MessageId, operator: Admin) -> HTMLResponse:
    message = _message(request, ctx, message_id)
    action, lines = f"/desk/messages/{message_id}/replay", visible(message.raw, ctx)
    return form_page(request, "replay_confirm.html", operator, action, message=message, lines=lines)


@router.post("/messages/{message_id}/replay")
async def replay(request: Request, ctx: Ctx, message_id: MessageId) -> HTMLResponse:
    operator, _ = await admin_form(request)
    message = _message(request, ctx, message_id)
    try:
        record = ctx.intake.replay(message.sender, message.control_id, operator.requestor)
    except DomainError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    answered = f"{record.answer} {record.error_code} {record.error_location}".strip()
    title = phrase(request, "done.replayed", id=message_id, answer=answered)
    return render(request, "done.html", title=title, error=record.error)
