"""The page's language: English or Japanese, from the `web.language` setting or, when
that is `auto`, the browser's Accept-Language (RFC 9110 12.5.4: the highest q-value
among the languages we have wins, English when none is).

The words are data, one YAML catalog per language (`locales/{en,ja}.yaml`, read with
the safe loader), used in the templates through one function, `t("key", name=...)`,
and by the handlers through `phrase(request, "key", ...)` for what they say on a page
(a done page's title, a refusal, a form's errors); a key missing in Japanese falls
back to English, one missing in both shows the key (tests check that the catalogs
have the same keys and that the templates write no words of their own).

`broker.display.visible` is applied to every value a template prints (the environment's
finalize): control and format characters in data from the wire are shown as visible
escapes, never handed to the browser to interpret.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from broker.display import visible
from broker.domain.unlinked import read

LANGUAGES = ("en", "ja")
DEFAULT = "en"


@cache
def catalog(language: str) -> dict[str, str]:
    text = files("broker.web").joinpath("locales", f"{language}.yaml").read_text(encoding="utf-8")
    loaded: dict[str, str] = yaml.safe_load(text)
    return loaded


def translate(language: str, key: str, **values: object) -> str:
    text = catalog(language).get(key) or catalog(DEFAULT).get(key) or key
    return text.format(**values) if values else text


@pass_context
def t(context: Context, key: str, **values: object) -> str:
    """The template function: `key` in the language the page is rendered in (`lang`)."""
    return translate(context.get("lang") or DEFAULT, key, **values)


def from_accept_language(header: str) -> str:
    """The language of ours the browser prefers most; English when it names none."""
    best, best_q = DEFAULT, 0.0
    for item in header.split(",")[:32]:
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q:  # a tie: the one named first
            best, best_q = primary, q
    return best


def language(request: Request) -> str:
    """The configured language, or the browser's choice when the setting is `auto`."""
    setting = getattr(request.app.state, "language", "auto")
    if setting in LANGUAGES:
        return str(setting)
    return from_accept_language(request.headers.get("accept-language", ""))


def phrase(request: Request, key: str, **values: object) -> str:
    """`key` in the request's language: what a handler says to the user (a title, a
    refusal) is in the page's language as the page's own words are."""
    return translate(language(request), key, **values)


def finalize(value: Any) -> Any:
    """Every printed value: strings made visible; markup (macros, already finalized) kept."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


@pass_context
def unlinked(context: Context, text: str) -> str:
    """Why an MPPS is linked to no step, in the page's language: the store keeps one
    English text (broker.domain.unlinked); one of no known kind is shown as stored."""
    reasons = read(text)
    if not reasons:
        return text
    language = context.get("lang") or DEFAULT
    parts = (translate(language, f"unlinked.{reason.kind}", **reason.values) for reason in reasons)
    return translate(language, "unlinked.separator").join(parts)


@pass_context
def priority(context: Context, code: str, term: str) -> str:
    """An HL7 priority (table 0027) as the order form offers it: its meaning in the
    page's language and its code; a code the catalogs do not know (a site profile's
    own) shows the DICOM term the profile maps it to."""
    key = f"priority.{code}"
    label = translate(context.get("lang") or DEFAULT, key) if key in catalog(DEFAULT) else term
    return f"{label} ({code})"


@pass_context
def date_text(context: Context, day: date, form: str = "long") -> str:
    """A day written the way the page's language writes it (`long` or `short`)."""
    language = context.get("lang") or DEFAULT
    weekdays, months = translate(language, "date.weekdays").split(), translate(language, "date.months").split()
    month = months[day.month - 1]
    return translate(
        language, f"date.{form}", weekday=weekdays[day.weekday()], day=day.day, month=month,
        month_abbr=month[:3], month_number=day.month, year=day.year,
    )  # fmt: skip
