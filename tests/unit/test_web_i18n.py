"""The page's languages and what it prints: catalogs alike, the browser's choice,
control characters as visible escapes, everything escaped."""

from __future__ import annotations

from string import Formatter

import pytest
from fastapi import FastAPI, Request

from broker.domain.model import PersonName
from broker.store.browse import Criteria, OrderHit
from broker.store.name_keys import fold, name_keys, words
from broker.web import i18n
from broker.web.page import _templates


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    english, japanese = i18n.catalog("en"), i18n.catalog("ja")
    assert set(english) == set(japanese)
    for key, text in english.items():
        if not key.startswith("date."):  # each language writes a date with its own parts
            assert _fields(text) == _fields(japanese[key]), key


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"),
        ("en-GB,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,ja;q=0.5,en;q=0.4", "ja"),
        ("en;q=0.2, JA;q=0.8", "ja"),
        ("ja;q=0, en", "en"),
        ("ja;q=oops", "en"),
        ("de", "en"),
    ],
)
def test_the_browser_chooses_among_our_languages(header: str, chosen: str) -> None:
    assert i18n.from_accept_language(header) == chosen


def test_control_and_format_characters_are_shown_not_interpreted() -> None:
    assert i18n.visible("YAMADA\x1b$B;3ED\x1b(B") == "YAMADA␛$B;3ED␛(B"
    assert i18n.visible("A\x00B\rC\x7fD\x85E") == "A␀B␍C␡D\\x85E"
    assert i18n.visible("abc\u202edcba\ufeff") == "abc\\u202edcba\\ufeff"
    assert i18n.visible("山田　太郎 ヤマダ") == "山田　太郎 ヤマダ"  # ideographic space is text


def test_a_rendered_name_shows_escapes_and_is_escaped() -> None:
    name = PersonName("<b>EVIL</b>\x1b[31m^JOHN", "山田\u202e^太郎", "ヤマダ^タロウ\x07")
    hit = OrderHit(7, "ACC\x1b1", "PO1", "PID\x00", name, "19700101", False, False, ())
    html = _templates.get_template("find.html").render(
        lang="en", criteria=Criteria(name="x\x1by"), asked=True, hits=[hit], more=False, shown=100
    )
    assert "&lt;b&gt;EVIL&lt;/b&gt;␛[31m, JOHN" in html and "<b>EVIL" not in html
    assert "山田\\u202e 太郎" in html and "ヤマダ タロウ␇" in html
    assert "ACC␛1" in html and "PID␀" in html and 'value="x␛y"' in html
    assert "\x1b" not in html and "\u202e" not in html and "\x00" not in html


def test_name_keys_fold_width_case_and_kana() -> None:
    assert fold("ﾔﾏﾀﾞ") == fold("やまだ") == "ヤマダ"
    assert fold("\uff39\uff21\uff2d\uff21\uff24\uff21") == "yamada"  # full-width Latin
    assert name_keys(PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ")) == {
        "yamada", "tarou", "yamadatarou", "山田", "太郎", "山田太郎", "ヤマダ", "タロウ", "ヤマダタロウ",
    }  # fmt: skip
    assert words(" 山田、 太郎^ ") == ["山田", "太郎"]


@pytest.mark.parametrize(("setting", "chosen"), [("ja", "ja"), ("en", "en"), ("auto", "ja")])
def test_the_setting_wins_over_the_browser_unless_auto(setting: str, chosen: str) -> None:
    app = FastAPI()
    app.state.language = setting
    asking = "ja, en;q=0.5" if setting != "ja" else "en"
    request = Request({"type": "http", "headers": [(b"accept-language", asking.encode())], "app": app})
    assert i18n.language(request) == (chosen if setting != "en" else "en")


@pytest.mark.parametrize(
    ("lang", "code", "term", "shown"),
    [("ja", "S", "STAT", "至急 (S)"), ("en", "R", "ROUTINE", "Routine (R)"), ("ja", "Z", "LOW", "LOW (Z)")],
)
def test_a_priority_is_offered_by_its_meaning_or_else_the_profiles_term(
    lang: str, code: str, term: str, shown: str
) -> None:
    """HL7 table 0027 codes the catalogs know are named in the page's language; a site
    profile's own code shows the DICOM term the profile maps it to."""
    template = _templates.from_string("{{ priority(code, term) }}")
    assert template.render(lang=lang, code=code, term=term) == shown
