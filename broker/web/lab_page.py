"""The worklist lab page, "What does this modality see?": a calling AE title and a
query (the usual keys, or one pasted as key=value lines or DICOM JSON) run through the
broker's own C-FIND path — WorklistProvider with the caller's station-only rule, then
AnswerPlan with its station quirks, the answers read back from the bytes the SCP would
send — and, for each step of the asked days it does not return, the key that excluded
it. Below, the last queries of each station as the SCP logged them, each re-runnable
here, and the station's de-identified bundle for its vendor."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from broker.actors.worklist_provider import Explained, TooManyMatches
from broker.dicom.query_text import QueryTextError, as_text, flat, parse
from broker.domain.errors import InvalidInput
from broker.domain.query_log import LoggedQuery
from broker.mapping.dicom_bytes import read_identifier
from broker.mapping.mwl import AnswerPlan, query_from_identifier
from broker.web import i18n
from broker.web.auth import caller_role
from broker.web.context import WebContext, context
from broker.web.lab import Keys, keys_identifier
from broker.web.page import render

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(context)]
_STEP = "ScheduledProcedureStepSequence[0]."


@dataclass
class Answer:
    """One item as the caller gets it: attribute → value, and the character set note."""

    values: dict[str, str]
    charset: str
    note: str = ""


@dataclass
class Result:
    """What the page shows for one run: the query as run (key=value lines), the items
    returned with the attributes they carry, and the steps left out with their reasons."""

    asked: str
    answers: list[Answer] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    not_returned: list[Explained] = field(default_factory=list)
    refused: str = ""


@router.get("/lab")
def lab_page(
    request: Request,
    ctx: Ctx,
    keys: Keys,
    calling_ae: Annotated[str, Query(max_length=16)] = "",
    query: Annotated[str, Query(max_length=8192)] = "",
) -> Response:
    if caller_role(request) is None:
        return RedirectResponse("/login", status_code=303)
    calling_ae, language = calling_ae.strip(), i18n.language(request)
    result, error = None, ""
    if calling_ae:
        try:
            result = _run(ctx, calling_ae, parse(query) if query.strip() else keys_identifier(keys), language)
        except (QueryTextError, InvalidInput, ValueError) as exc:
            error = str(exc)
    form = {"calling_ae": calling_ae, "query": query, **asdict(keys)}
    log = _log(ctx, language)
    return render(request, "lab.html", form=form, result=result, error=error, callers=_callers(ctx), log=log)


def _run(ctx: WebContext, calling_ae: str, asked: Dataset, language: str) -> Result:
    """The C-FIND path for `calling_ae`, then the explanation of what it left out."""
    query = query_from_identifier(asked, fold_case_names=ctx.profile.dicom.fold_case_names)
    result = Result(as_text(flat(asked, empty=True)))
    try:
        entries = ctx.worklist.rad5_query_modality_worklist(query, calling_ae)
    except TooManyMatches as exc:
        result.refused = i18n.translate(language, "lab.too_many", limit=exc.limit)
        entries = []
    plan = AnswerPlan.for_caller(asked, ctx.profile, calling_ae)
    quirks = ctx.profile.dicom.stations.get(calling_ae)
    station_set = quirks.character_set if quirks else ""
    whose = i18n.translate(language, "lab.station_set" if station_set else "lab.asked_set")
    wanted = station_set or _charset(asked)
    answers = [read_identifier(plan.encode(entry, implicit=False)) for entry in entries]
    result.answers = [_answer(answer, wanted, whose, language) for answer in answers]
    result.attributes = list(dict.fromkeys(key for answer in result.answers for key in answer.values))
    result.not_returned = [item for item in ctx.worklist.explain(query, calling_ae) if item.excluded_by]
    return result


def _answer(answer: Dataset, wanted: str, whose: str, language: str) -> Answer:
    """An answer as the page lists it; a character set other than the one asked for
    (or the station's) is said: the modality may not show that text."""
    charset = _charset(answer)
    unfit = wanted and charset and charset != wanted
    note = i18n.translate(language, "lab.cannot_hold", charset=wanted, whose=whose) if unfit else ""
    values = {key.removeprefix(_STEP): value for key, value in flat(answer, empty=True).items()}
    return Answer(values, charset or i18n.translate(language, "lab.default_charset"), note)


def _charset(ds: Dataset) -> str:
    value = ds.get("SpecificCharacterSet")
    if not value:
        return ""
    return "\\".join(value) if isinstance(value, MultiValue) else str(value)


def _callers(ctx: WebContext) -> list[str]:
    """Calling AE titles worth offering: configured callers, stations with quirks, and
    every AE title heard from."""
    return sorted({*ctx.dicom.callers, *ctx.profile.dicom.stations, *ctx.queries.callers()})


@dataclass(frozen=True)
class LogRow:
    """One logged query: when (site time), its keys, and the lab link that runs it again."""

    query: LoggedQuery
    at: str
    keys: str
    retry: str


def _log(ctx: WebContext, language: str) -> dict[str, list[LogRow]]:
    by_station: dict[str, list[LogRow]] = {}
    for logged in ctx.queries.recent():
        captured = logged.captured
        keys = dict(logged.keys)
        if captured is not None and not captured.dropped:
            try:
                keys = flat(read_identifier(captured.request, implicit=captured.implicit), empty=True)
            except Exception:  # refused bytes (answered 0xA900): the logged keys are all there is
                keys = dict(logged.keys)
        retry = "/lab?" + urlencode({"calling_ae": logged.calling_ae, "query": as_text(keys)})
        shown = ", ".join(f"{k.removeprefix('ScheduledProcedureStepSequence.')}={v}" for k, v in logged.keys.items())
        at = _local(logged.at, ctx.profile.time_zone)
        shown = shown or i18n.translate(language, "lab.universal")
        by_station.setdefault(logged.calling_ae, []).append(LogRow(logged, at, shown, retry))
    return by_station


def _local(moment: datetime, time_zone: str | None) -> str:
    """The site's wall-clock time, as the day page shows worklist times."""
    return moment.astimezone(ZoneInfo(time_zone) if time_zone else None).strftime("%Y-%m-%d %H:%M:%S")
