"""Reading pydantic models from YAML files, with errors a site can act on: the file,
the key, the value given and the reason (shared by the configuration and profiles)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: Path, error: type[Exception]) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: the file must hold a mapping of keys")
    return data


def validate(
    model: type[M],
    data: dict[str, object],
    path: Path,
    error: type[Exception],
    sources: Mapping[str, str] | None = None,
) -> M:
    """`sources` names where a key's value came from when not from the file (e.g. the
    environment variable that set it), so the message points at what to fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path}: {'; '.join(_problem(e, sources or {}) for e in exc.errors())}") from exc


def _problem(error: ErrorDetails, sources: Mapping[str, str]) -> str:
    """`dicom.port = 'x': Input should be a valid integer`; a missing key is named
    without its parent's whole mapping as the value."""
    key = key_path(error["loc"])
    origin = next((f" (from {src})" for k, src in sources.items() if key == k or key.startswith(f"{k}.")), "")
    if error["type"] == "missing":
        return f"{key}: required, not given{origin}"
    return f"{key} = {error.get('input')!r}: {error['msg']}{origin}"


def key_path(loc: tuple[int | str, ...]) -> str:
    """('image_managers', 0, 'port') -> 'image_managers[0].port'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
