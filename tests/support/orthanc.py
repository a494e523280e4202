"""Orthanc (Debian `orthanc`) as a worklist client: `POST /modalities/{id}/find-worklist`.

Orthanc is started with a configuration of its own: its REST API on a free loopback
port, no DICOM server (a worklist SCU needs none), no plugins, storage in the test's
folder, UTF-8 as its default encoding (its queries then name ISO_IR 192, and its JSON
shows what it decoded). `--trace-dicom` writes the identifiers it sends and receives
to its log, so a test can show what went over the wire.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from support.net import free_port, wait_for_port

#: Debian installs it in /usr/sbin, which a user's PATH may not hold.
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


class Orthanc:
    def __init__(self, workdir: Path, modalities: dict[str, tuple[str, int]], encoding: str = "Utf8") -> None:
        """`modalities`: name → (AE title, port on 127.0.0.1)."""
        self.workdir, self.http_port = workdir, free_port()
        self.log = workdir / "orthanc.log"
        self._config = {
            "Name": "worklist-client",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "storage"),
            "Plugins": [],
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,
            "DicomAet": "ORTHANC",
            "DicomModalities": {
                name: {"AET": ae_title, "Host": "127.0.0.1", "Port": port}
                for name, (ae_title, port) in modalities.items()
            },
            "DefaultEncoding": encoding,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "SaveJobs": False,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Orthanc:
        config = self.workdir / "orthanc.json"
        config.write_text(json.dumps(self._config), encoding="utf-8")
        self._process = subprocess.Popen(
            [ORTHANC, "--trace-dicom", f"--logfile={self.log}", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.http_port)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self._url("/system"), timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def find_worklist(self, modality: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """The worklist answers as Orthanc decodes them (its simplified JSON)."""
        response = httpx.post(self._url(f"/modalities/{modality}/find-worklist"), json=query, timeout=60)
        assert response.status_code == 200, f"Orthanc answered {response.status_code}: {response.text}"
        answers: list[dict[str, Any]] = response.json()
        return answers

    def logged(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
