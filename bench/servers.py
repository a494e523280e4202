"""How each server under test is configured and started, on free ports in a temp dir.

DCMTK peers (wlmscpfs, and Orthanc, which is built on DCMTK) set TCP_NODELAY only
when the environment says TCP_NODELAY=1; the broker and the Python floors set it on
every accepted socket themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from bench.dicom_client import Scp
from bench.null_scp import AE_TITLE as NULL_AE
from bench.procs import Peer, free_port
from broker.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
BENCH_PROFILE = ROOT / "bench" / "profile.yaml"
NODELAY = {"TCP_NODELAY": "1"}

BROKER_AE = "BROKER"
WLMSCPFS_AE = "BENCHWL"  # also the name of the worklist folder wlmscpfs serves
ORTHANC_AE = "ORTHANC"
MAX_ASSOCIATIONS = 300


class BrokerServer:
    """`python -m broker serve` with a temp config: SQLite in `workdir`, the bench
    profile, and room for the whole worklist in one answer (max_worklist_matches).
    DIMSE/idle timeouts are raised so a 100k-answer query never runs into them."""

    def __init__(
        self,
        workdir: Path,
        *,
        max_matches: int,
        sqlite_synchronous: str,
        ris_port: int | None = None,
        database_url: str | None = None,
        hl7_processes: int = 1,
    ) -> None:
        """`database_url`: another database (PostgreSQL) instead of SQLite in `workdir`;
        `hl7_processes`: the broker's `hl7.processes`."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.hl7_port, self.dicom_port, self.web_port = free_port(), free_port(), free_port()
        self.database = workdir / "broker.db"
        self.hl7_processes = hl7_processes
        self.sqlite_synchronous = sqlite_synchronous
        url = database_url or f"sqlite:///{self.database}"
        config = {
            "profile": str(BENCH_PROFILE),
            "log_level": "INFO",
            "database": {"url": url, "sqlite_synchronous": sqlite_synchronous},
            "hl7": {"host": "127.0.0.1", "port": self.hl7_port, "processes": hl7_processes},
            "dicom": {
                "ae_title": BROKER_AE,
                "host": "127.0.0.1",
                "port": self.dicom_port,
                "max_worklist_matches": max_matches,
                # Room for issue #17's 200 idle associations next to the measuring ones.
                "max_associations": MAX_ASSOCIATIONS,
                "dimse_timeout_seconds": 3600,
                "network_timeout_seconds": 3600,
            },
            # The DICOMweb worklist search is timed beside C-FIND (part A).
            "web": {"enabled": True, "host": "127.0.0.1", "port": self.web_port, "max_body_bytes": 65536},
        }
        if ris_port is not None:
            config["ris"] = {"host": "127.0.0.1", "port": ris_port}
            config["outbox"] = {"poll_seconds": 0.2}  # the default; stated, as part C measures it
        self.config = workdir / "broker.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        upgrade(url, create=True)  # serve never creates it
        self.peer = Peer(
            "broker",
            [sys.executable, "-m", "broker", "serve", "--config", str(self.config)],
            [self.hl7_port, self.dicom_port, self.web_port],
            workdir / "broker.log",
            cwd=ROOT,
        )

    @property
    def scp(self) -> Scp:
        return Scp("broker", self.dicom_port, BROKER_AE)


def wlmscpfs(workdir: Path, worklist_root: Path) -> tuple[Peer, Scp]:
    """DCMTK's file-based worklist SCP, in its default (forking, -efr) mode."""
    port = free_port()
    peer = Peer(
        "wlmscpfs",
        # Its default of 50 associations raised like the broker's, for the scale rows.
        ["wlmscpfs", "-ll", "warn", "--max-associations", str(MAX_ASSOCIATIONS), "-dfp", str(worklist_root), str(port)],
        [port],
        workdir / "wlmscpfs.log",
        env=NODELAY,
    )
    return peer, Scp("wlmscpfs", port, WLMSCPFS_AE)


def worklist_plugin() -> Path:
    """The ModalityWorklists sample plugin that Debian's orthanc package ships."""
    listing = subprocess.run(["dpkg", "-L", "orthanc"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        if "libModalityWorklists.so" in line and Path(line).is_file():
            return Path(line)
    raise FileNotFoundError("libModalityWorklists.so not found in `dpkg -L orthanc` (apt-get install orthanc)")


def orthanc(workdir: Path, worklist_folder: Path) -> tuple[Peer, Scp]:
    """Orthanc with only its DICOM server and the worklist plugin reading `worklist_folder`."""
    port = free_port()
    storage = workdir / "orthanc-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "Plugins": [str(worklist_plugin())],
        "Worklists": {"Enable": True, "Database": str(worklist_folder), "FilterIssuerAet": False},
        "HttpServerEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AE,
        "DicomPort": port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowFindWorklist": True,
        "DicomScpTimeout": 3600,
        "ConcurrentJobs": 1,
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    peer = Peer("orthanc", [orthanc_binary(), str(path)], [port], workdir / "orthanc.log", env=NODELAY)
    return peer, Scp("Orthanc", port, ORTHANC_AE)


def orthanc_binary() -> str:
    return "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else "Orthanc"


def null_scp(workdir: Path, canned: Path, filtered: int, universal: int) -> tuple[Peer, Scp]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.null_scp", "--port", str(port), "--canned", str(canned)]
    argv += ["--filtered", str(filtered), "--universal", str(universal), "--max-associations", str(MAX_ASSOCIATIONS)]
    peer = Peer(f"null SCP ({universal})", argv, [port], workdir / "null_scp.log", cwd=ROOT)
    return peer, Scp("null SCP", port, NULL_AE)


def mllp_floor(workdir: Path) -> tuple[Peer, int]:
    port = free_port()
    peer = Peer(
        "MLLP floor",
        [sys.executable, "-m", "bench.mllp_floor", "--port", str(port)],
        [port],
        workdir / "mllp_floor.log",
        cwd=ROOT,
    )
    return peer, port
