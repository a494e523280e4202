"""The page for the day: the worklist by station with each step's state and its MPPS,
outbox health, MPPS to reconcile and refused HL7 messages. Server-rendered (Jinja2,
autoescaped: patient names are data from the wire), no script; it reloads itself.

Signing in posts the token once; it comes back as an HttpOnly, SameSite=Strict cookie
(see `broker.web.auth` for why that cookie only ever authorizes reading).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from broker.store import inbound_log, mpps_log, reads
from broker.store.reads import StepRow
from broker.web import i18n
from broker.web.auth import COOKIE, caller_role
from broker.web.context import WebContext, context
from broker.web.forms import page_admin
from broker.web.params import Day

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
#: Seconds between the day view's refreshes (static/live.js).
Refresh = Annotated[int, Query(ge=2, le=600)]

_templates = Environment(
    loader=PackageLoader("broker.web"), autoescape=select_autoescape(default=True), finalize=i18n.finalize
)
_templates.globals.update(t=i18n.t, date_text=i18n.date_text, unlinked=i18n.unlinked, priority=i18n.priority)


def _person(group: str) -> str:
    """family^given^middle^prefix^suffix as a Western reader expects it: `DOE, JOHN Q`."""
    family, *rest = group.split("^")
    given = " ".join(part for part in rest if part)
    return f"{family}, {given}" if family and given else family or given


def _spaced(group: str) -> str:
    """Kanji and kana names are read family first, space separated: `山田 太郎`."""
    return " ".join(part for part in group.split("^") if part)


def _dicom_time(value: str) -> str:
    """DICOM `YYYYMMDD HHMMSS` (an MPPS start) as `2026-11-23 10:05`; anything else as is."""
    try:
        return datetime.strptime(value[:13], "%Y%m%d %H%M").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


_templates.filters.update(person=_person, spaced=_spaced, age=_age, dicom_time=_dicom_time)


def render(request: Request, name: str, status_code: int = 200, **values: object) -> HTMLResponse:
    """The page `name`, in the language the request asks for (`broker.web.i18n`)."""
    html = _templates.get_template(name).render(lang=i18n.language(request), **values)
    return HTMLResponse(html, status_code=status_code)


def site_today(time_zone: str | None, now: datetime | None = None) -> date:
    """The site's calendar day at `now` (an aware time; default: now): in its time zone
    (zoneinfo applies DST), else the host's. A host on UTC serving a site in Tokyo would
    otherwise show yesterday's worklist until 09:00; worklist times are the site's
    wall-clock times."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(time_zone) if time_zone else None).date()


@router.get("/")
def day_page(request: Request, ctx: Ctx, day: Day = None, every: Refresh = 15) -> Response:
    if caller_role(request) is None:
        return RedirectResponse("/login", status_code=303)
    day = day or site_today(ctx.profile.time_zone)
    steps = reads.steps(ctx.engine, day=day)
    stations: dict[str, list[StepRow]] = {}
    for step in steps:
        stations.setdefault(step.station_ae, []).append(step)  # "": no station
    return render(
        request,
        "day.html",
        day=day,
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
        now=datetime.now(),
        stations=stations,
        step_counts=Counter(s.status for s in steps),
        mpps_counts=Counter(s.mpps_status for s in steps if s.mpps_status),
        outbox=ctx.outbox.health(datetime.now()),
        exceptions=mpps_log.exceptions(ctx.engine),
        refused=inbound_log.recent(ctx.engine, limit=10, refused_only=True),
        signed_in=not request.app.state.tokens.open,
        admin=page_admin(request) is not None,
        every=every,
    )


@router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from the broker's own assets (see `broker.web.server`)."""
    return render(request, "docs.html")


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    """A valid token is set as the cookie; a wrong one gets the form again (401)."""
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    token = fields.get("token", [""])[0].strip()
    if not token or request.app.state.tokens.role_of(token) is None:
        return render(request, "login.html", status_code=401, failed=True)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=12 * 3600)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
