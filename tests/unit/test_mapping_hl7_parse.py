"""The intake's parser (mapping/hl7_parse.py) builds exactly the tree `hl7.parse`
builds: same container types, separators and text, for the sample messages and for
arbitrary text made of separators and letters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hl7
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.mapping.hl7_parse import parse
from broker.mapping.hl7_text import with_cr

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "hl7").rglob("*.hl7"))


def _shape(element: Any) -> Any:
    if isinstance(element, str):
        return element
    return (type(element).__name__, element.separator, element.esc, element.separators, [_shape(e) for e in element])


def _same(text: str) -> None:
    try:
        expected = _shape(hl7.parse(text))
    except Exception as exc:  # python-hl7 refuses it: so must we, alike
        with pytest.raises(type(exc)):
            parse(text)
        return
    assert _shape(parse(text)) == expected


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_parse_to_the_same_tree(path: Path) -> None:
    raw = path.read_bytes()
    _same(with_cr(raw.decode("utf-8", errors="replace")))


@given(
    st.sampled_from(["MSH|^~\\&|", "MSH|^~\\&#|", "MSH|^~|", "MSH||||", "MSH^|~\\&^", "PID|", "MSH|^^\\&|"]),
    st.text(alphabet="|^~\\&#\rAB1 ", max_size=60),
)
def test_any_text_parses_to_the_same_tree(header: str, rest: str) -> None:
    _same(header + rest)
