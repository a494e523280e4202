"""Orders without HL7: create, change and cancel an order from the API (JSON, admin
token) and from the page's form (signed-in administrator). Both translate their input
with `broker.web.order_entry` and hand the command to the Order Filler, as the HL7
intake does; the page's forms are plain HTML posted with a form token
(`broker.web.forms`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from broker.domain.audit import Requestor
from broker.domain.commands import Command
from broker.domain.errors import DomainError, InvalidInput, UnknownRecord
from broker.domain.model import Order
from broker.store import reads
from broker.web import i18n, order_entry
from broker.web.actions import form_page
from broker.web.auth import Authorized
from broker.web.context import WebContext, context
from broker.web.forms import Operator, admin_form, require_page_admin
from broker.web.i18n import phrase
from broker.web.order_entry import Choices, CodeIn, Held, OrderChangeIn, OrderIn, PatientIn
from broker.web.page import render
from broker.web.params import AccessionInPath
from broker.web.schemas import OrderOut

router = APIRouter(prefix="/api", dependencies=[Authorized], tags=["orders"])
pages = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Operator, Depends(require_page_admin)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "a read token"},
    404: {"description": "no active order with this accession number"},
    409: {"description": "refused by the workflow rules (identifier in use, order started...)"},
    422: {"description": "a value the Order Filler refuses, named by its field"},
}


def _refused(exc: DomainError) -> HTTPException:
    """A bad value is 422 (named by its field), an unknown order 404, any other refusal 409."""
    if isinstance(exc, InvalidInput):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, UnknownRecord) else status.HTTP_409_CONFLICT
    return HTTPException(code, str(exc))


def _enter(ctx: WebContext, command: Callable[[], Command], requestor: Requestor) -> str:
    """The command applied by the Order Filler; the accession number of its order."""
    try:
        [outcome] = ctx.order_filler.enter([command()], requestor)
    except DomainError as exc:
        raise _refused(exc) from None
    return outcome.accession_number


def _held(ctx: WebContext, accession_number: str, language: str = i18n.DEFAULT) -> Held:
    """The active order with this accession number, as a change or cancel names it
    (refused in the page's language when a page asks; the API answers in English)."""
    found = [o for o in reads.orders(ctx.engine, accession_number=accession_number, limit=10) if o.active]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, i18n.translate(language, "order_form.no_active"))
    order = found[0]
    procedure = order.procedures[0]
    return Held(
        order.placer_order_number,
        order.placer_application,
        order.patient.patient_id,
        order.patient.issuer,
        procedure.requested_procedure_id,
        procedure.steps[0].sps_id if procedure.steps else "",
    )


def _order(ctx: WebContext, accession_number: str) -> Order:
    return reads.orders(ctx.engine, accession_number=accession_number, limit=1)[0]


def _api_operator(request: Request) -> Requestor:
    """The admin token's name, for the audit."""
    header = request.headers.get("authorization", "")
    token = request.app.state.tokens.token(header.removeprefix("Bearer ").strip())
    return Requestor(f"web-api {token.name if token else 'admin'}", request.client.host if request.client else "")


@router.post("/orders", status_code=status.HTTP_201_CREATED, responses=_REFUSALS)
def create_order(ctx: Ctx, body: OrderIn, request: Request) -> OrderOut:
    """A new order, scheduled as an HL7 NW would be: identifiers it lacks assigned,
    checked and audited, RAD-4 sent to the Image Managers."""
    accession = _enter(ctx, lambda: order_entry.place(body, ctx.profile), _api_operator(request))
    return OrderOut.model_validate(_order(ctx, accession))


@router.put("/orders/{accession_number}", responses=_REFUSALS)
def change_order(ctx: Ctx, accession_number: AccessionInPath, body: OrderChangeIn, request: Request) -> OrderOut:
    """Change an order not yet started (time, modality, station, procedure), as an HL7
    XO would: RAD-13 to the Image Managers, audited."""
    held = _held(ctx, accession_number)
    _enter(ctx, lambda: order_entry.change(held, body, ctx.profile), _api_operator(request))
    return OrderOut.model_validate(_order(ctx, accession_number))


@router.delete("/orders/{accession_number}", responses=_REFUSALS)
def cancel_order(ctx: Ctx, accession_number: AccessionInPath, request: Request) -> OrderOut:
    """Cancel an order not yet started, as an HL7 CA would: its steps leave the
    worklist, RAD-13 to the Image Managers, audited."""
    held = _held(ctx, accession_number)
    _enter(ctx, lambda: order_entry.cancel(held), _api_operator(request))
    return OrderOut.model_validate(_order(ctx, accession_number))


@router.get("/order-choices")
def order_choices(ctx: Ctx) -> Choices:
    """What an order may name, from the profile: modalities (and their stations),
    procedure codes (as sent, and as the worklist shows them), priorities."""
    return order_entry.choices(ctx.profile)


# The page: the same, from a form.


def _form_page(request: Request, ctx: WebContext, operator: Operator, *, error: str = "", status_code: int = 200,
               fields: dict[str, str] | None = None, held: Order | None = None) -> HTMLResponse:  # fmt: skip
    action = f"/orders/{held.accession_number}/change" if held else "/orders/new"
    return form_page(
        request,
        "order_form.html",
        operator,
        action,
        status_code,
        choices=order_entry.choices(ctx.profile),
        patients=reads.patients(ctx.engine, limit=500),
        error=error,
        fields=fields or {},
        held=held,
    )


@pages.get("/orders/new")
def new_order_form(request: Request, ctx: Ctx, operator: Admin) -> HTMLResponse:
    return _form_page(request, ctx, operator)


@pages.post("/orders/new")
async def new_order(request: Request, ctx: Ctx) -> HTMLResponse:
    operator, fields = await admin_form(request)
    try:
        body = OrderIn(patient=_patient(ctx, fields), **_step_fields(fields))
        accession = _enter(ctx, lambda: order_entry.place(body, ctx.profile), operator.requestor)
    except (ValidationError, HTTPException) as exc:
        return _form_page(request, ctx, operator, error=_message(request, exc), status_code=422, fields=fields)
    return _done(request, "done.scheduled", _order(ctx, accession))


@pages.get("/orders/{accession_number}/change")
def change_order_form(request: Request, ctx: Ctx, accession_number: AccessionInPath, operator: Admin) -> HTMLResponse:
    _held(ctx, accession_number, i18n.language(request))
    return _form_page(request, ctx, operator, held=_order(ctx, accession_number))


@pages.post("/orders/{accession_number}/change")
async def change_order_page(request: Request, ctx: Ctx, accession_number: AccessionInPath) -> HTMLResponse:
    operator, fields = await admin_form(request)
    held = _held(ctx, accession_number, i18n.language(request))
    try:
        body = OrderChangeIn(**_step_fields(fields))
        _enter(ctx, lambda: order_entry.change(held, body, ctx.profile), operator.requestor)
    except (ValidationError, HTTPException) as exc:
        order = _order(ctx, accession_number)
        error = _message(request, exc)
        return _form_page(request, ctx, operator, error=error, status_code=422, fields=fields, held=order)
    return _done(request, "done.changed", _order(ctx, accession_number))


@pages.get("/orders/{accession_number}/cancel")
def cancel_order_confirm(
    request: Request, ctx: Ctx, accession_number: AccessionInPath, operator: Admin
) -> HTMLResponse:
    _held(ctx, accession_number, i18n.language(request))
    title, explain = phrase(request, "cancel.title", accession=accession_number), phrase(request, "cancel.explain")
    order, button = _order(ctx, accession_number), phrase(request, "cancel.button")
    action = f"/orders/{accession_number}/cancel"
    return form_page(
        request, "confirm.html", operator, action, title=title, explain=explain, order=order, button=button
    )


@pages.post("/orders/{accession_number}/cancel")
async def cancel_order_page(request: Request, ctx: Ctx, accession_number: AccessionInPath) -> HTMLResponse:
    operator, _ = await admin_form(request)
    held = _held(ctx, accession_number, i18n.language(request))
    _enter(ctx, lambda: order_entry.cancel(held), operator.requestor)
    return _done(request, "done.cancelled", _order(ctx, accession_number))


def _done(request: Request, key: str, order: Order) -> HTMLResponse:
    """The page after an order was entered, changed or cancelled: `key` says which."""
    return render(request, "done.html", title=phrase(request, key, accession=order.accession_number), order=order)


def _patient(ctx: WebContext, fields: dict[str, str]) -> PatientIn:
    """The patient picked from the known ones (by database order: its ID and issuer),
    else the new patient typed in."""
    known = fields.get("known_patient", "")
    if known:
        found = reads.patients(ctx.engine, patient_id=known, limit=1)
        if found:
            return PatientIn(patient_id=found[0].patient_id, issuer=found[0].issuer)
    name = "=".join((fields.get("name", ""), fields.get("name_ideographic", ""), fields.get("name_phonetic", "")))
    return PatientIn(
        patient_id=fields.get("patient_id", ""),
        name=name.rstrip("="),
        birth_date=fields.get("birth_date", "").replace("-", ""),
        sex=fields.get("sex", ""),
    )


def _step_fields(fields: dict[str, str]) -> dict[str, object]:
    """The form's step fields as the JSON body names them; empty ones left out."""
    values: dict[str, object] = {
        key: fields[key]
        for key in ("modality", "station_ae", "description", "priority", "accession_number", "referring_physician")
        if fields.get(key)
    }
    if fields.get("date") and fields.get("time"):
        values["scheduled_start"] = _start(fields["date"], fields["time"])
    chosen, typed = fields.get("procedure_code", ""), fields.get("code_value", "")
    if chosen or typed:  # one of the profile's codes, else one typed in (when the profile allows)
        scheme, _, value = chosen.partition("|") if chosen else (fields.get("code_scheme", ""), "", typed)
        values["procedure_code"] = CodeIn(value=value, scheme=scheme, meaning=fields.get("code_meaning", ""))
    return values


def _start(day: str, time: str) -> datetime | str:
    """The form's date and time (browser formats); left as text for validation to refuse."""
    try:
        return datetime.fromisoformat(f"{day}T{time}")
    except ValueError:
        return f"{day} {time}"


def _message(request: Request, exc: ValidationError | HTTPException) -> str:
    """Why the form was refused, in the page's language: each field by its JSON name
    and what is wrong with it. A refusal of the Order Filler (a domain rule) is
    introduced in that language and its reason given as the rule words it."""
    if isinstance(exc, HTTPException):
        return phrase(request, "order_form.refused", reason=exc.detail)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {_problem(request, e)}" for e in exc.errors())


def _problem(request: Request, error: Any) -> str:
    """A validation error (pydantic's type and context) as the catalog words it, else pydantic's text."""
    key = f"invalid.{error['type']}"
    found = i18n.catalog(i18n.DEFAULT).get(key)
    return phrase(request, key, **error.get("ctx", {})) if found else str(error["msg"])
