"""UIDs the Order Filler assigns (broker/domain/identifiers.py), PS3.5 9.1 and B.2."""

from __future__ import annotations

import re

import pytest

from broker.domain.identifiers import make_uid

UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def test_uid_without_root_is_2_25_uuid_derived_ps3_5_B_2() -> None:
    uid = make_uid(None)
    assert uid.startswith("2.25.")
    assert UID.match(uid)
    assert len(uid) <= 64


@pytest.mark.parametrize("root", ["1.2.392.200036.9999.7", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.1"])
def test_uid_under_site_root_is_valid_and_at_most_64_chars_ps3_5_9_1(root: str) -> None:
    uid = make_uid(root)
    assert uid.startswith(root + ".")
    assert len(uid) <= 64
    assert UID.match(uid), uid


def test_uids_are_unique_ps3_5_9_1() -> None:
    assert len({make_uid("1.2.392.200036.9999.7") for _ in range(200)}) == 200


@pytest.mark.parametrize("length", [41, 63])
def test_root_too_long_for_unique_uids_is_refused_ps3_5_9_1(length: int) -> None:
    """A root leaving too few digits would make UIDs collide (or equal the root)."""
    root = ("1.2.392.200036.9999." + "1" * 64)[:length]
    with pytest.raises(ValueError, match="too few digits"):
        make_uid(root)
