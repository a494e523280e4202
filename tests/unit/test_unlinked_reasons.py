"""Why an MPPS is unlinked is stored once, in English, and shown in the page's language:
each kind the PPS Manager writes is read back with its values, and the Japanese page
says it without a word of the English (#18 item 6)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment

from broker.domain.integrity import Disagreement
from broker.domain.unlinked import FORMS, Reason, joined, read
from broker.web import i18n

ENGLISH_WORDS = re.compile(r"disagrees|scheduled|names steps|unscheduled|worklist|quoted")
values = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters=";"), max_size=12)


def _say(language: str, text: str) -> str:
    env = Environment()
    env.globals["unlinked"] = i18n.unlinked
    return env.from_string("{{ unlinked(text) }}").render(text=text, lang=language)


def _every_kind(value: str) -> list[Reason]:
    return [
        Disagreement("PatientID", value, "PAT001").at_step("SPS1"),
        Disagreement("StudyInstanceUID", "1.2", value).at_step(""),
        Reason("ambiguous", {"attribute": "AccessionNumber", "value": value, "count": "2"}),
        Reason("no_match", {}),
        Reason("unscheduled", {}),
    ]


@given(values)
def test_each_kind_reads_back_with_its_values(value: str) -> None:
    reasons = _every_kind(value)
    assert {r.kind for r in reasons} == set(FORMS)
    assert read(joined(reasons)) == reasons


def test_the_japanese_page_says_each_kind_in_japanese_and_keeps_the_values() -> None:
    text = joined(_every_kind("山田^太郎"))
    japanese = _say("ja", text)
    assert ENGLISH_WORDS.search(japanese) is None, japanese
    assert "「山田^太郎」" in japanese and "ステップ SPS1" in japanese and "2 件" in japanese
    assert _say("en", text) == text  # the English page says what the store, CLI and audit say


def test_a_text_of_no_known_kind_is_shown_as_stored() -> None:
    assert read("reconciled by hand; see the ticket") is None
    assert _say("ja", "reconciled by hand") == "reconciled by hand"
