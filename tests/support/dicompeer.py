"""Real DICOM peers: DCMTK findscu as the modality querying the worklist, and the
dcmjs-dimse MPPS SCU (tests/peers/mpps_scu.mjs), an implementation independent of
pynetdicom, for N-CREATE / N-SET."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

PEERS = Path(__file__).resolve().parents[1] / "peers"


def findscu(
    port: int, keys: list[str], workdir: Path, *, query: Dataset | None = None, aet: str = "MODALITY1"
) -> list[Dataset]:
    """Run `findscu -W` with `-k` keys (and optionally a query file, for identifiers in
    a character set a command line cannot carry); return the answers it wrote (-X)."""
    out = workdir / f"find-{len(list(workdir.glob('find-*')))}"
    out.mkdir(parents=True)
    args = ["findscu", "-W", "-aet", aet, "-aec", "BROKER", "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    args += ["127.0.0.1", str(port)]
    if query is not None:
        query_file = out / "query.dcm"
        query.save_as(query_file, implicit_vr=False, little_endian=True)
        args.append(str(query_file))
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert result.returncode == 0, f"findscu failed: {result.stderr}"
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def mpps(
    port: int, op: str, workdir: Path, *, uid: str = "", dataset: dict[str, object] | None = None
) -> dict[str, object]:
    """One MPPS operation with dcmjs-dimse; returns {status, affectedSopInstanceUid, errorComment, errorId}."""
    args = [
        "node",
        str(PEERS / "mpps_scu.mjs"),
        "--port",
        str(port),
        "--calling-ae",
        "MODALITY1",
        "--called-ae",
        "BROKER",
        op,
    ]
    if uid or op == "set":
        args += ["--uid", uid]
    if dataset is not None:
        path = workdir / f"mpps-{op}-{len(list(workdir.glob('mpps-*')))}.json"
        path.write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
        args += ["--dataset", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"mpps_scu {op} failed: {result.stderr}"
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))
