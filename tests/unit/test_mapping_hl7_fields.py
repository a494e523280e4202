"""The intake's field reader (mapping/hl7_fields.py) reads what python-hl7 reads:
`extract_field` on the tree `hl7.parse` builds, for every part of every segment of
the sample messages and of arbitrary text made of separators, escapes and letters;
and it fails where `hl7.parse` fails, alike."""

from __future__ import annotations

from itertools import product
from pathlib import Path

import hl7
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.mapping.hl7_fields import Message, Segment, TextSegment, TreeSegment
from broker.mapping.hl7_text import with_cr

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "hl7").rglob("*.hl7"))
#: Beyond the deepest part any segment below has, so "not present" is read too.
PARTS = range(1, 4)


def _reading(segment: Segment, fields: int) -> list[object]:
    """Everything a mapping can ask of a segment."""
    values = [segment.value(f, r, c, s) for f, r, c, s in product(range(1, fields + 2), PARTS, PARTS, PARTS)]
    return [segment.name, values] + [(segment.repetitions(f), segment.filled(f)) for f in range(fields + 2)]


def _same(text: str) -> None:
    try:
        tree = hl7.parse(text)
    except Exception as exc:  # python-hl7 refuses it: so must we, alike
        with pytest.raises(type(exc)):
            Message.read(text)
        return
    read = Message.read(text)
    assert len(read.segments) == len(tree)
    for ours, theirs in zip(read, tree, strict=True):
        fields = len(theirs)
        assert _reading(ours, fields) == _reading(TreeSegment(theirs), fields)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_read_as_python_hl7_reads_them(path: Path) -> None:
    text = with_cr(path.read_bytes().decode("utf-8", errors="replace"))
    assert all(isinstance(s, TextSegment) for s in Message.read(text))  # the fast reader, not the tree
    _same(text)


#: python-hl7 reports an escape it cannot read through the deprecated `Logger.warn`.
@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
@given(
    st.sampled_from(["MSH|^~\\&|", "MSH|^~\\&#|", "MSH|^~|", "MSH||||", "MSH^|~\\&^", "PID|", "MSH|^^\\&|"]),
    st.text(alphabet="|^~\\&#\rAB1 FSTRE.", max_size=60),
)
def test_any_text_reads_as_python_hl7_reads_it(header: str, rest: str) -> None:
    _same(header + rest)


def test_escapes_are_python_hl7s() -> None:
    [msh, obx] = Message.read("MSH|^~\\&|A\rOBX|1|a\\F\\b^c\\S\\d&e\\T\\f~g\\R\\h\\E\\i\\X41\\")
    assert (msh.value(1), msh.value(2)) == ("|", "^~\\&")  # as they are
    assert [obx.value(2, 1, 1), obx.value(2, 1, 2, 1), obx.value(2, 1, 2, 2), obx.value(2, 2)] == [
        "a|b", "c^d", "e&f", "g~h\\iA",
    ]  # fmt: skip
