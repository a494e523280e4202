"""Every word the console's pages show comes from the catalogs (#18 item 6): no
template writes a Latin word in its text (outside `{{ }}` / `{% %}`, code and names
such as MPPS), nor as a string literal that is not a catalog key or a technical
value, and every key a template asks for is in the catalogs."""

from __future__ import annotations

import re

import pytest

from broker.web import i18n
from broker.web.page import _templates
from support.page_words import latin_words

TEMPLATES = sorted(_templates.list_templates(extensions=["html"]))
#: Literals that are values, not words: classes, the day-link form, the default language, an outbox state.
TECHNICAL = frozenset({"short", "en", "good", "alert", "caution", "pending"})
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_KEY = re.compile(r"[a-z_]+(\.[\w ]+)+")


def _source(name: str) -> str:
    assert _templates.loader is not None
    return _templates.loader.get_source(_templates, name)[0]


def _literals(name: str) -> list[str]:
    """The template's string literals (inside its tags), without their quotes."""
    return [value[1:-1] for _, kind, value in _templates.lex(_source(name)) if kind == "string"]


def _is_words(literal: str) -> bool:
    """Whether a literal reads as text for a person: a lower-case word that is no key,
    template name, path, date format or class."""
    if not re.search(r"[a-z]{2}", literal) or literal in TECHNICAL:
        return False
    english = i18n.catalog(i18n.DEFAULT)
    is_key = literal in english or (literal.endswith(".") and any(k.startswith(literal) for k in english))
    technical = literal.endswith(".html") or literal.startswith(("/", "s-", "%", "{")) or "%" in literal
    return not (is_key or technical)


def test_there_are_templates_to_check() -> None:
    assert {"login.html", "desk.html", "lab.html", "order_form.html", "day.html"} <= set(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_writes_words_of_its_own(name: str) -> None:
    """Text nodes and shown attributes of the template, its Jinja parts blanked out."""
    assert latin_words(_JINJA.sub("·", _source(name))) == [], name


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_passes_words_as_literals(name: str) -> None:
    assert [literal for literal in _literals(name) if _is_words(literal)] == [], name


def test_every_key_a_template_asks_for_is_in_the_catalogs() -> None:
    english, japanese = i18n.catalog("en"), i18n.catalog("ja")
    asked = {key for name in TEMPLATES for key in _literals(name) if _KEY.fullmatch(key) and not key.endswith(".html")}
    assert asked and {key for key in asked if key not in english or key not in japanese} == set()
