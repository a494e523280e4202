"""The worklist folder DCMTK wlmscpfs and Orthanc read: one `.wl` file per item,
written by DCMTK's `dump2dcm` from the item's dump.

dump2dcm spends ~20 ms of its ~25 ms loading the full data dictionary, which would
make 10k files take minutes. It is run with a dictionary trimmed to the tags the dumps
use (DCMDICTPATH), checked once to write the same data set as with the full one;
if the check fails, or no dictionary is found, the full dictionary is used.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom

from bench.worklist import DUMP_TAGS, Item, dump

DICTIONARIES = ("/usr/share/libdcmtk*/dicom.dic", "/usr/share/dcmtk*/dicom.dic", "/usr/local/share/dcmtk*/dicom.dic")


def _full_dictionary() -> Path | None:
    for pattern in DICTIONARIES:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[-1]
    return None


class WorklistFolder:
    """`root/<AE>/` with DCMTK's `lockfile` (wlmscpfs needs it) and `<n>.wl` files."""

    def __init__(self, root: Path, ae_title: str, workers: int | None = None) -> None:
        self.root = root
        self.folder = root / ae_title
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "lockfile").touch()
        self._dumps = root / "dumps"
        self._dumps.mkdir(exist_ok=True)
        self._workers = workers or os.cpu_count() or 2
        self._env = self._trimmed_dictionary_env()
        self.count = 0

    def path(self, item: Item) -> Path:
        return self.folder / f"{item.index:08d}.wl"

    def _trimmed_dictionary_env(self) -> dict[str, str]:
        full = _full_dictionary()
        if full is None:
            return {}
        wanted = {tag.upper() for tag in DUMP_TAGS}
        lines = [
            line
            for line in full.read_text(encoding="latin-1").splitlines(keepends=True)
            if line.startswith(("(0002,", "(FFFE,")) or line.split("\t", 1)[0].upper() in wanted
        ]
        trimmed = self.root / "bench.dic"
        trimmed.write_text("".join(lines), encoding="latin-1")
        env = {"DCMDICTPATH": str(trimmed)}
        with tempfile.TemporaryDirectory() as scratch:
            probe = Item(0)
            (Path(scratch) / "p.dump").write_text(dump(probe), encoding="ascii")
            a, b = Path(scratch) / "full.wl", Path(scratch) / "trimmed.wl"
            self._dump2dcm(Path(scratch) / "p.dump", a, {"DCMDICTPATH": str(full)})
            self._dump2dcm(Path(scratch) / "p.dump", b, env)
            if pydicom.dcmread(a) != pydicom.dcmread(b):
                return {}
        return env

    @staticmethod
    def _dump2dcm(source: Path, target: Path, env: dict[str, str]) -> None:
        subprocess.run(
            ["dump2dcm", "-q", "+te", str(source), str(target)],
            check=True,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
        )

    def _write(self, item: Item) -> None:
        source = self._dumps / f"{item.index:08d}.dump"
        source.write_text(dump(item), encoding="ascii")
        self._dump2dcm(source, self.path(item), self._env)
        source.unlink()

    def fill(self, size: int) -> None:
        """Add the items this folder does not have yet, up to `size`."""
        items: Sequence[Item] = [Item(i) for i in range(self.count, size)]
        with ThreadPoolExecutor(self._workers) as pool:
            list(pool.map(self._write, items))
        self.count = max(self.count, size)
