"""Real DICOM peers: DCMTK findscu as the modality querying the worklist, and the
dcmjs-dimse peers (tests/peers), an implementation independent of pynetdicom and of
DCMTK: mpps_scu.mjs for N-CREATE / N-SET, find_scu.mjs for worklist C-FIND."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

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


def _node_peer(
    script: str, port: int, workdir: Path, *args: str, dataset: dict[str, object] | None = None, aet: str
) -> list[dict[str, Any]]:
    """Run one of the dcmjs-dimse peers in tests/peers with `dataset` written to a JSON
    file (passed as its last option); return the JSON lines it printed."""
    command = ["node", str(PEERS / script), "--port", str(port), "--calling-ae", aet, "--called-ae", "BROKER", *args]
    if dataset is not None:
        path = workdir / f"{Path(script).stem}-{len(list(workdir.glob('*.json')))}.json"
        path.write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
        command += ["--dataset", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{script} failed: {result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


def mpps(
    port: int,
    op: str,
    workdir: Path,
    *,
    uid: str = "",
    dataset: dict[str, object] | None = None,
    aet: str = "MODALITY1",
) -> dict[str, object]:
    """One MPPS operation with dcmjs-dimse; returns {status, affectedSopInstanceUid, errorComment, errorId}."""
    args = [op, "--uid", uid] if uid or op == "set" else [op]
    return _node_peer("mpps_scu.mjs", port, workdir, *args, dataset=dataset, aet=aet)[-1]


class DimseFinder:
    """Modality Worklist C-FIND with dcmjs-dimse: one `find_scu.mjs --serve` process for
    many queries (Node spends ~0.3 s of CPU loading dcmjs at every start), each query on
    an association of its own. Responses as find_scu.mjs prints them: {status,
    identifier (DICOM JSON model), raw (hex bytes of PN and Specific Character Set by path)}."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def find(self, port: int, query: dict[str, Any], *, aet: str = "MODALITY1") -> list[dict[str, Any]]:
        process = self._started()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"port": port, "callingAe": aet, "dataset": query}, ensure_ascii=False) + "\n")
        process.stdin.flush()
        responses = []
        for line in process.stdout:
            message = json.loads(line)
            if message.get("end"):
                assert "error" not in message, f"find_scu.mjs: {message['error']}"
                return responses
            responses.append(message)
        raise AssertionError(f"find_scu.mjs exited: {process.stderr.read() if process.stderr else ''}")

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                ["node", str(PEERS / "find_scu.mjs"), "--called-ae", "BROKER", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)
