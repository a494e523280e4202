"""Configuration overrides from environment variables: `BROKER__DICOM__PORT=11113` sets
`dicom.port`, one `__` per level.

An explicit merge rather than pydantic-settings: the configuration stays one frozen
pydantic model read from YAML, and the environment only patches that mapping before it
is validated, so an invalid value is reported like one in the file (key, value, reason),
plus the variable it came from. Names are matched case-insensitively against the model's
fields; under a mapping of names (`dicom.callers`) a segment is kept as written, so
`BROKER__DICOM__CALLERS__CT01__STATION_ONLY=true` sets the caller `CT01`. A value is read
as a YAML scalar or flow collection (`11113`, `true`, `[a, b]`, `{host: ris, port: 2576}`),
so lists such as `image_managers` can be set whole.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from broker.yaml_models import yaml_problem

PREFIX = "BROKER__"


def environment_overrides(
    model: type[BaseModel], environ: Mapping[str, str], error: type[Exception]
) -> tuple[dict[str, object], dict[str, str]]:
    """The nested mapping the `BROKER__` variables describe, and for each key path
    the variable that set it."""
    overrides: dict[str, object] = {}
    sources: dict[str, str] = {}
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX):
            continue
        keys = _keys(model, name[len(PREFIX) :].split("__"))
        if not all(keys):
            raise error(f"{name}: an empty key (a leading or trailing '__')")
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError as exc:  # the value is not shown: it may be a secret
            raise error(f"{name}: not a YAML value ({yaml_problem(exc)})") from None
        _place(overrides, keys, value)
        sources[".".join(keys)] = name
    return overrides, sources


def merge(base: Mapping[str, object], overrides: Mapping[str, object]) -> dict[str, object]:
    """`base` with `overrides` laid over it, mappings merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def _keys(model: type[BaseModel], segments: list[str]) -> list[str]:
    """Field names in lower case, names under a dict as written."""
    keys: list[str] = []
    current: Any = model
    for segment in segments:
        if isinstance(current, type) and issubclass(current, BaseModel):
            key = segment.lower()
            field = current.model_fields.get(key)
            current = _model_or_dict(field.annotation) if field else None
        else:
            key = segment
            current = _model_or_dict(get_args(current)[1]) if get_origin(current) is dict else None
        keys.append(key)
    return keys


def _model_or_dict(annotation: Any) -> Any:
    """The model or dict type inside `X | None`; other types end the walk."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next((_model_or_dict(arg) for arg in get_args(annotation) if arg is not type(None)), None)
    return annotation


def _place(target: dict[str, object], keys: list[str], value: object) -> None:
    for key in keys[:-1]:
        below = target.get(key)
        if not isinstance(below, dict):
            below = target[key] = {}
        target = below
    target[keys[-1]] = value
