"""Identifiers the Order Filler assigns when an order arrives without them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

#: Leaves at least 23 digits (~76 bits of the UUID) after the root and its dot.
MAX_ROOT_LENGTH = 40


def make_uid(root: str | None) -> str:
    """A new UID: under the site's root if it has one, else a UUID-derived `2.25` UID
    (PS3.5 B.2). Either way at most 64 characters."""
    number = str(uuid.uuid4().int)
    if not root:
        return f"2.25.{number}"
    if len(root) > MAX_ROOT_LENGTH:
        raise ValueError(f"a UID root of {len(root)} characters leaves too few digits to be unique")
    return f"{root}.{number}"[:64]


@dataclass(frozen=True)
class AssignmentPolicy:
    uid_root: str | None = None
    accession_prefix: str = "A"
    requested_procedure_prefix: str = "RP"
    sps_prefix: str = "SPS"
    station_by_modality: dict[str, str] = field(default_factory=dict)
    station_by_procedure: dict[str, str] = field(default_factory=dict)
    #: The placer application of orders made at the broker (its console and API): the
    #: profile's sending application; such an order's placer number is its filler number.
    own_application: str = "BROKER"

    def station_for(self, procedure_code: str, modality: str) -> str:
        """The procedure's own station if the site names one, else the modality's."""
        return self.station_by_procedure.get(procedure_code) or self.station_by_modality.get(modality, "")
