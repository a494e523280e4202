"""Reading pydantic models from YAML files, with errors a site can act on: the file,
the key, the value given and the reason (shared by the configuration and profiles)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar, get_args

import yaml
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: Path, error: type[Exception]) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: {yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: the file must hold a mapping of keys")
    return data


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), without the quoted source line that
    PyYAML adds: that line may hold a secret."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context} (line {mark.line + 1}, column {mark.column + 1})"
    return type(exc).__name__


def validate(
    model: type[M],
    data: dict[str, object],
    path: Path,
    error: type[Exception],
    sources: Mapping[str, str] | None = None,
    context: Mapping[str, object] | None = None,
) -> M:
    """`sources` names where a key's value came from when not from the file (e.g. the
    environment variable that set it), so the message points at what to fix; `context`
    is handed to the model's validators (the environment, for secrets kept there).

    The pydantic error is not chained: its text holds every input, secrets included."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        secrets = _secret_fields(model)
        problems = "; ".join(_problem(e, sources or {}, secrets) for e in exc.errors())
        raise error(f"{path}: {problems}") from None


def _problem(error: ErrorDetails, sources: Mapping[str, str], secrets: frozenset[str]) -> str:
    """`dicom.port = 'x': Input should be a valid integer`. The value is left out when
    it is a secret (a token) or a whole mapping or list (which may hold one); a
    missing key is named as such."""
    key = key_path(error["loc"])
    origin = next((f" (from {src})" for k, src in sources.items() if key == k or key.startswith(f"{k}.")), "")
    if error["type"] == "missing":
        return f"{key}: required, not given{origin}"
    value = error.get("input")
    named = [part for part in error["loc"] if isinstance(part, str)]
    if isinstance(value, Mapping | list) or (named and named[-1] in secrets):
        return f"{key}: {error['msg']}{origin}"
    return f"{key} = {value!r}: {error['msg']}{origin}"


def _secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the SecretStr fields anywhere in `model`'s tree of models."""
    found: set[str] = set()
    pending: list[object] = [model]
    seen: set[object] = set()
    while pending:
        annotation = pending.pop()
        if annotation in seen:
            continue
        seen.add(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, field in annotation.model_fields.items():
                if field.annotation in (SecretStr, SecretBytes):
                    found.add(name)
                pending.append(field.annotation)
        pending.extend(get_args(annotation))
    return frozenset(found)


def key_path(loc: tuple[int | str, ...]) -> str:
    """('image_managers', 0, 'port') -> 'image_managers[0].port'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
