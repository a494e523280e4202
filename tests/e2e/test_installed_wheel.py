"""The broker installed like a product: the built wheel in a fresh virtual environment,
`broker init` a site folder, then the README walk-through (`broker send --today` the
samples, `broker find`, the page) served from another working directory. Nothing may
come from the checkout: the profiles and the sample catalog travel in the wheel."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from support.net import free_port, wait_for_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = (".git", ".venv", "build", "dist", "*.egg-info", "node_modules", "var", "__pycache__", ".hypothesis")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin/` of a new venv holding the built wheel. Its dependencies come from the
    test environment's site-packages through a path entry (no network, no editable
    finder: that directory's .pth files are not run), so `broker` itself can only be
    the wheel's."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: setuptools would reuse a stale build/ in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*SCRATCH))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"), str(source)],
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    [wheel] = (work / "dist").glob("swf_broker-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([env_dir / "bin" / "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True)
    return env_dir / "bin"


@pytest.fixture
def site(installed: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """`broker init` a site, then `broker serve` it from an unrelated directory."""
    made = subprocess.run(
        [installed / "broker", "init", str(tmp_path / "site")], check=True, capture_output=True, text=True
    )
    assert "wrote" in made.stdout
    ports = {"HL7": free_port(), "DICOM": free_port(), "WEB": free_port()}
    env = {**os.environ, **{f"BROKER__{name}__PORT": str(port) for name, port in ports.items()}}
    env["BROKER__HL7__HOST"] = env["BROKER__DICOM__HOST"] = "127.0.0.1"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [installed / "broker", "serve", "--config", str(tmp_path / "site" / "broker.yaml")],
        cwd=elsewhere, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        for port in ports.values():
            wait_for_port(port, timeout=60)
        yield elsewhere, {name: str(port) for name, port in ports.items()}
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
    assert not (elsewhere / "var").exists(), "the database belongs beside the configuration"


def test_wheel_serves_the_readme_walk_through_from_another_directory(
    installed: Path, site: tuple[Path, dict[str, str]]
) -> None:
    cwd, ports = site
    samples = ["rad-1-patient-registration/adt_a04.hl7", "rad-2-placer-order/orm_o01_nw.hl7"]
    sent = subprocess.run(
        [installed / "broker", "send", "--today", "--port", ports["HL7"], *samples],
        cwd=cwd, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert [line.split()[1] for line in sent.stdout.splitlines()] == ["AA", "AA"]
    found = subprocess.run(
        [installed / "broker", "find", "127.0.0.1", ports["DICOM"], "--station", "CT01", "--date", "today"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    assert found.returncode == 0, found.stdout + found.stderr
    assert "ACC1001" in found.stdout
    page = subprocess.run(
        [installed / "python", "-c", f"import httpx; print(httpx.get('http://127.0.0.1:{ports['WEB']}/').text)"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert date.today().isoformat() in page.stdout
    assert "ACC1001" in page.stdout, "today's page shows the sample order"


def test_init_never_overwrites_a_site(installed: Path, tmp_path: Path) -> None:
    command = [installed / "broker", "init", str(tmp_path / "site")]
    subprocess.run(command, check=True, capture_output=True)
    config = tmp_path / "site" / "broker.yaml"
    config.write_text(config.read_text() + "\n# the site's own line\n")
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2
    assert config.read_text().endswith("# the site's own line\n")
