"""Data the broker ships: the mapping profiles, the HL7 sample catalog and the IHE
scenario files. In a checkout these are links to the top-level folders (where a site
reads and adapts them); a built wheel carries copies, so an installed broker finds its
profiles and samples without the repository (`importlib.resources`)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_dir(name: str) -> Path:
    """`profiles`, `hl7` or `scenarios`, as shipped with this installation."""
    return Path(str(files(__package__) / name))
