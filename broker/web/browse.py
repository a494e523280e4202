"""Find an order and drill down into it: the console's search page (/find) and an
order's page (/order/{id}), for the operator asked "where is this patient's exam?".

The search goes through one indexed query (broker.store.browse); the order page
shows its HL7 history (each accepted message with the answer it got), its requested
procedures and steps, its MPPS with their attributes, and every outbound message
with its delivery attempts and the destination's answer. Reading needs a signed-in
read token, like the day view; nothing here changes anything.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from pydicom.datadict import keyword_for_tag

from broker.domain.errors import InvalidInput
from broker.mapping.charsets import decode
from broker.mapping.hl7_out import ordering_key
from broker.store import browse
from broker.web.auth import caller_role
from broker.web.context import WebContext, context
from broker.web.page import render
from broker.web.params import FIRST_DAY, LAST_DAY, MAX_ID, Accession, PatientId, StationAe

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
Name = Annotated[str, Query(max_length=200)]
#: Orders listed at most; more found: the page says to narrow the search.
SHOWN = 100
_LINES = re.compile(r"\r\n|\r|\n")


@router.get("/find")
def find_page(
    request: Request,
    ctx: Ctx,
    name: Name = "",
    patient_id: PatientId = "",
    accession: Accession = "",
    station: StationAe = "",
    first_day: Annotated[str, Query(alias="from", max_length=10)] = "",
    last_day: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    if caller_role(request) is None:
        return RedirectResponse("/login", status_code=303)
    typed = (name.strip(), patient_id.strip(), accession.strip(), station.strip())
    criteria = browse.Criteria(*typed, _day(first_day, "from"), _day(last_day, "to"))
    hits = [] if criteria.empty() else browse.search(ctx.engine, criteria, limit=SHOWN + 1)
    return render(
        request, "find.html", criteria=criteria, asked=not criteria.empty(),
        hits=hits[:SHOWN], more=len(hits) > SHOWN, shown=SHOWN,
    )  # fmt: skip


def _day(value: str, field: str) -> date | None:
    """A date field's YYYY-MM-DD (a form sends it empty when left blank: None); 422 outside the days the page shows."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: a day YYYY-MM-DD is expected")
    return day


@router.get("/order/{order_pk}")
def order_page(request: Request, ctx: Ctx, order_pk: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    if caller_role(request) is None:
        return RedirectResponse("/login", status_code=303)
    record = browse.order_record(ctx.engine, order_pk)
    if record is None:
        return render(request, "find.html", 404, criteria=browse.Criteria(), asked=False, hits=[], missing=True)
    charsets = ctx.profile.hl7_in.charsets
    return render(
        request, "order.html", record=record, order=record.order,
        outbound=browse.outbound(ctx.engine, ordering_key(record.order)),
        wire=lambda raw: wire_lines(raw, charsets), attributes=attribute_rows,
    )  # fmt: skip


def wire_lines(raw: bytes, charsets: dict[str, str]) -> list[str]:
    """An HL7 message as its segments, decoded as its MSH-18 says (byte for byte as
    Latin-1 when that fails, so that nothing is hidden); the page shows any control
    character left in a segment as a visible escape."""
    try:
        text = decode(raw, charsets)
    except (InvalidInput, LookupError, ValueError):
        text = raw.decode("latin-1")
    return [line for line in _LINES.split(text) if line]


def attribute_rows(dataset: dict[str, Any], depth: int = 0) -> list[tuple[str, str]]:
    """DICOM JSON (PS3.18 F.2) as (indented keyword, value) rows: sequences item by
    item, person names with all their groups (`alphabetic=ideographic=phonetic`)."""
    rows: list[tuple[str, str]] = []
    for tag in sorted(dataset):
        element = dataset[tag]
        label = "  " * depth + (keyword_for_tag(int(tag, 16)) or f"({tag[:4]},{tag[4:]})")
        values = element.get("Value", []) if isinstance(element, dict) else []
        if isinstance(element, dict) and element.get("vr") == "SQ":
            rows.append((label, f"{len(values)} item(s)"))
            for item in values:
                rows.extend(attribute_rows(item, depth + 1))
        else:
            rows.append((label, "\\".join(_value(v) for v in values)))
    return rows


def _value(value: Any) -> str:
    if isinstance(value, dict):  # PN: {"Alphabetic": ..., "Ideographic": ..., "Phonetic": ...}
        groups = [str(value.get(g, "")) for g in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(groups).rstrip("=")
    return str(value)
