"""Dependencies point inward (STYLE.md): adapters → actors → domain.

The domain imports no adapter, protocol or SQL package; the actors import no protocol
package. Checked over everything a module reaches through the broker's own imports,
so a rule cannot be dodged by importing a helper that imports the protocol (as the
Order Filler once did through broker.errors, which imported the DICOM status table).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import broker

ROOT = Path(broker.__file__).parent

PROTOCOLS = ("pynetdicom", "pydicom", "hl7", "fastapi", "starlette", "broker.hl7", "broker.dicom", "broker.web")
FORBIDDEN = {
    "broker.domain": (*PROTOCOLS, "sqlalchemy", "alembic", "broker.store", "broker.jobs", "broker.mapping"),
    "broker.actors": PROTOCOLS,
}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def _direct_imports(name: str) -> frozenset[str]:
    path = _module_file(name)
    if path is None:
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}" for alias in node.names if _module_file(f"{node.module}.{alias.name}")
            )
    return frozenset(found)


def _reached(name: str) -> dict[str, str]:
    """Every module `name` imports, directly or through broker modules, each with the
    broker module that imports it."""
    reached: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        for imported in _direct_imports(current):
            if imported not in reached:
                reached[imported] = current
                if imported.startswith("broker."):
                    todo.append(imported)
    return reached


def _modules(package: str) -> list[str]:
    folder = ROOT / package.split(".")[1]
    return sorted(f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


@pytest.mark.parametrize("module", [m for layer in FORBIDDEN for m in _modules(layer)])
def test_inner_layers_import_no_outer_package(module: str) -> None:
    layer = next(layer for layer in FORBIDDEN if module.startswith(f"{layer}."))
    violations = {m: by for m, by in _reached(module).items() if _in(m, FORBIDDEN[layer])}
    assert violations == {}, f"{module} reaches (module: imported by) {violations}"


def test_the_check_sees_a_violation() -> None:
    """The checker itself: an adapter module is known to reach its protocol package."""
    assert "pynetdicom" in _reached("broker.dicom.mpps_scp")
    assert "broker.dicom.status" in _reached("broker.dicom.refusals")
