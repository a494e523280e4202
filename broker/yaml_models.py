"""Reading pydantic models from YAML files, with errors a site can act on: the file,
the key, the value given and the reason (shared by the configuration and profiles)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

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


def validate(model: type[M], data: dict[str, object], path: Path, error: type[Exception]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise error(f"{path}: {problems}") from exc
