"""The DICOMweb search answer written straight from the resolved values
(broker.mapping.dicomweb.json_answer) equals the C-FIND answer bytes read back by
pydicom, for any text the store may hold: the one-store-two-faces promise, kept
without decoding every answer. And the XML written from that JSON reads back as it."""

from __future__ import annotations

import warnings
from dataclasses import replace
from io import BytesIO
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.filereader import read_dataset

from broker.domain.model import Code, PersonName
from broker.domain.worklist import WorklistEntry
from broker.mapping.dicomweb import json_answer, native_xml, read_search, read_xml_dataset
from broker.mapping.mwl import AnswerPlan
from support.entries import worklist_entry

UNICODE = ("ISO_IR 192",)
#: Spaces, backslashes, `=` and `^` where pydicom's reading strips, splits and groups;
#: Latin and kanji where the C-FIND answer needs a character set (or '?' in AE/UI/CS).
_text = st.text(alphabet=" AZaz09\\=^-.éß山田", max_size=12)
_names = st.builds(PersonName, _text, _text, _text)
#: Names as names are (PS3.19 A.1.5 carries components, so a group of bare `^`s is no name).
_group = st.lists(st.text(alphabet="AZaz09 éß山田", min_size=1, max_size=6), max_size=3).map("^".join)
_real_names = st.builds(PersonName, _group, _group, _group)


def _over_dimse(plan: AnswerPlan, entry: WorklistEntry) -> dict[str, Any]:
    """What the web search answered before json_answer: the C-FIND bytes read back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of odd values; the reading is the point
        ds = read_dataset(BytesIO(plan.encode(entry, implicit=False)), is_implicit_VR=False, is_little_endian=True)
        ds.decode()
        ds.pop("SpecificCharacterSet", None)
        found: dict[str, Any] = ds.to_json_dict()
    return found


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    name=_names,
    texts=st.lists(_text, min_size=9, max_size=9),
    everything=st.booleans(),
)
def test_json_answer_equals_the_c_find_answer_read_back(name: PersonName, texts: list[str], everything: bool) -> None:
    entry = replace(
        worklist_entry(),
        patient_name=name,
        patient_id=texts[0],  # LO
        accession_number=texts[1],  # SH
        station_ae=texts[2],  # AE
        study_instance_uid=texts[3],  # UI
        sex=texts[4],  # CS
        birth_date=texts[5],  # DA
        step_description=texts[6],  # LO in a sequence
        referring_physician=texts[7],  # PN
        protocol_codes=[Code(texts[8], "LOCAL", texts[8])],
    )
    search = read_search([("includefield", "all")] if everything else [("includefield", "PatientWeight")])
    plan = AnswerPlan(None if search.everything else search.identifier, UNICODE, {})
    assert json_answer(plan.resolve(entry)) == _over_dimse(plan, entry)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(name=_real_names, accession=_text)
def test_native_xml_reads_back_as_the_json_it_was_written_from(name: PersonName, accession: str) -> None:
    entry = replace(worklist_entry(), patient_name=name, accession_number=accession)
    answer = json_answer(AnswerPlan(None, UNICODE, {}).resolve(entry))
    assert read_xml_dataset(native_xml(answer)).to_json_dict() == _trailing_carets_dropped(answer)


def _trailing_carets_dropped(dataset: dict[str, Any]) -> dict[str, Any]:
    """PS3.19 A.1.5 writes a name's components, so `0^` comes back as `0` (the same
    name: PS3.5 6.2 lets trailing empty components and their `^` go)."""
    for element in dataset.values():
        for value in element.get("Value", []):
            if element["vr"] == "SQ":
                _trailing_carets_dropped(value)
            elif element["vr"] == "PN":
                value.update({group: text.rstrip("^") for group, text in value.items()})
    return dataset
