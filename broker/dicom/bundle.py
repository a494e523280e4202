"""A station's captured worklist queries and answers as one JSON file for its modality
vendor: "here is what your device asked and what it got", de-identified (see
`broker.dicom.deid`), with the worklist the station could see on the asked days, so the
vendor can load it into any worklist SCP and replay the queries (`broker find --replay`).

Queries and answers are DICOM JSON (PS3.18 F.2) read back from the captured bytes;
`matches` is the number of answers the broker sent (the bundle keeps at most the first
100 of each query). The bundle lists the profile and options applied and, per query,
each matching key the de-identification could not keep (`matching_kept: false`): only
for the others does a replay against the bundle's worklist promise the same counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydicom.dataset import Dataset

from broker.actors.worklist_provider import WorklistProvider
from broker.dicom.deid import Deidentifier
from broker.domain.errors import InvalidInput
from broker.domain.query_log import LoggedQuery
from broker.domain.worklist import WorklistEntry, WorklistQuery
from broker.mapping.dicom_bytes import read_identifier
from broker.mapping.mwl import AnswerPlan, query_from_identifier
from broker.mapping.profile import Profile

FORMAT = "swf-broker worklist bundle 1"
#: Steps of one query's days put in the bundle's worklist, at most.
WORKLIST_LIMIT = 200


def export(
    calling_ae: str,
    queries: Sequence[LoggedQuery],
    provider: WorklistProvider,
    profile: Profile,
    deid: Deidentifier,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The bundle of `calling_ae`'s `queries` (oldest first in the file)."""
    captured = [q for q in reversed(queries) if q.captured is not None and not q.captured.dropped]
    requests = [_request(q) for q in captured]
    entries = _visible(calling_ae, [r for r in requests if r is not None], provider, profile)
    applied = deid.applied
    whole = AnswerPlan(None, profile.dicom.character_sets, profile.dicom.priorities)  # an item: no station quirks
    return {
        "format": FORMAT,
        "station": calling_ae,
        "exported": deid.moment(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "deidentification": {
            "profile": f"PS3.15 Annex E {applied.profile} (Table E.1-1)",
            "options": applied.options,
            "codes": applied.codes,
            "notes": [
                "Names, IDs and UIDs are replaced by pseudonyms consistent within this bundle only.",
                "Dates are shifted by one number of days (times kept), so ranges keep their length."
                if deid.shift_days
                else "Dates are kept.",
                "An element without a value in a query is a return key asked, and is kept.",
                "Attributes Table E.1-1 does not list are kept only if they identify no one "
                "(modality, step ID and status, priority, codes); others are removed.",
            ],
        },
        "queries": [_query(q, r, deid) for q, r in zip(captured, requests, strict=True)],
        # logged queries whose bytes the log let go (its bound) or never held.
        "not_captured": len(queries) - len(captured),
        "worklist": [deid.dataset(read_identifier(whole.encode(e, implicit=False))).to_json_dict() for e in entries],
    }


def _request(query: LoggedQuery) -> Dataset | None:
    assert query.captured is not None
    try:
        return read_identifier(query.captured.request, implicit=query.captured.implicit)
    except Exception:  # bytes the broker refused to read (answered 0xA900): no identifier to show
        return None


def _query(logged: LoggedQuery, request: Dataset | None, deid: Deidentifier) -> dict[str, Any]:
    assert logged.captured is not None
    deid.lost = []
    identifier = deid.dataset(request, query=True).to_json_dict() if request is not None else None
    implicit = logged.captured.implicit
    answers = [deid.dataset(read_identifier(a, implicit=implicit)).to_json_dict() for a in logged.captured.answers]
    return {
        "at": deid.moment(logged.at).isoformat(timespec="seconds"),
        "status": f"0x{logged.status:04X}",
        "matches": logged.matches,
        "seconds": round(logged.seconds, 4),
        "identifier": identifier,
        "answers": answers,
        "answers_kept": len(answers),
        "matching_kept": not deid.lost and identifier is not None,
        "not_kept": list(deid.lost),
    }


def _visible(
    calling_ae: str, requests: Sequence[Dataset], provider: WorklistProvider, profile: Profile
) -> list[WorklistEntry]:
    """The steps the station could get on the days its queries asked for (status and
    its station-only rule applied, no other key), each once."""
    seen: dict[str, WorklistEntry] = {}
    for request in requests:
        try:
            query = query_from_identifier(request, fold_case_names=profile.dicom.fold_case_names)
        except InvalidInput:
            continue
        for item in provider.explain(WorklistQuery(period=query.period), calling_ae, WORKLIST_LIMIT):
            if not item.excluded_by:
                seen.setdefault(f"{item.entry.study_instance_uid}/{item.entry.sps_id}", item.entry)
    return list(seen.values())
