"""`broker find --explain` in the terminal: every step of the asked days, with what
kept it from the caller's worklist. The question radiology IT asks most of a worklist
broker is "why does the modality show nothing?"; the answer should not need a packet
capture."""

from __future__ import annotations

from collections.abc import Sequence

from broker.actors.worklist_provider import Explained
from broker.display import table

COLUMNS = ("Patient", "Patient ID", "Accession", "Modality", "Station", "Start", "Status", "Answer")


def verdict(item: Explained) -> str:
    """`returned`, or each excluding key with what was asked and what the item holds."""
    if not item.excluded_by:
        return "returned"
    return "; ".join(f"{r.key}: asked {r.asked!r}, item has {r.found!r}" for r in item.excluded_by)


def _row(item: Explained) -> tuple[str, ...]:
    entry = item.entry
    start = entry.start.strftime("%Y-%m-%d %H:%M") if entry.start else ""
    return (
        str(entry.patient_name), entry.patient_id, entry.accession_number, entry.modality, entry.station_ae,
        start, entry.status.value, verdict(item),
    )  # fmt: skip


def explanation_table(explained: Sequence[Explained]) -> str:
    if not explained:
        return "no scheduled steps in the asked period"
    return table(COLUMNS, (_row(item) for item in explained))
