"""The one C-FIND client every SCP is timed with: pynetdicom, as a modality would use it.

pynetdicom is used (not findscu) because it can keep one association open for many
queries, and because process start-up would otherwise dominate small queries. It has
no socket-option API, so TCP_NODELAY is set from the EVT_CONN_OPEN handler, which
runs after connect() and before the A-ASSOCIATE-RQ is sent: without it each exchange
can wait ~40 ms on a delayed ACK, and the benchmark would measure Nagle, not the SCP.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

CALLING_AE = "BENCHSCU"
PENDING = (0xFF00, 0xFF01)


def set_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler (requestor and acceptor alike): disable Nagle."""
    transport = event.assoc.dul.socket
    if transport is not None and transport.socket is not None:
        transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class Scp:
    """Where an SCP listens and the AE title it answers to."""

    name: str
    port: int
    ae_title: str


@dataclass
class FindResult:
    """One C-FIND: how many answers came back, the final status, and (when collected)
    the Accession Numbers, which the warm-up query uses to check the answers."""

    seconds: float
    answers: int
    status: int
    accessions: list[str] = field(default_factory=list)


class FindClient:
    def __init__(self) -> None:
        self._ae = AE(ae_title=CALLING_AE)
        self._ae.add_requested_context(
            ModalityWorklistInformationFind, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
        )
        self._ae.acse_timeout = 30
        self._ae.dimse_timeout = 3600
        self._ae.network_timeout = 3600

    def associate(self, scp: Scp) -> Association:
        assoc = self._ae.associate(
            "127.0.0.1", scp.port, ae_title=scp.ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
        )
        if not assoc.is_established:
            raise ConnectionError(f"{scp.name}: association not established")
        return assoc

    @contextmanager
    def association(self, scp: Scp) -> Iterator[Association]:
        """Released when done; aborted when interrupted, because pynetdicom's release
        waits for a reactor an interrupted C-FIND may have left busy."""
        assoc = self.associate(scp)
        try:
            yield assoc
        except BaseException:
            assoc.abort()
            raise
        assoc.release()

    @staticmethod
    def find(assoc: Association, query: Dataset, *, collect: bool = False) -> FindResult:
        """One C-FIND on an open association, timed from request to final response."""
        answers, status, accessions = 0, -1, []
        started = time.perf_counter()
        for response, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            status = int(response.Status) if "Status" in response else -1
            if status in PENDING:
                answers += 1
                if collect and identifier is not None:
                    accessions.append(str(identifier.get("AccessionNumber", "")))
        return FindResult(time.perf_counter() - started, answers, status, accessions)

    def find_fresh(self, scp: Scp, query: Dataset, *, collect: bool = False) -> FindResult:
        """Associate, query, release: the time covers all three, as for a modality
        that opens an association per worklist refresh."""
        started = time.perf_counter()
        with self.association(scp) as assoc:
            result = self.find(assoc, query, collect=collect)
        result.seconds = time.perf_counter() - started
        return result


def findscu_keys(query: Dataset, prefix: str = "") -> list[str]:
    """`query` as findscu `-k` arguments (a sequence's first item as `Seq[0].Key`)."""
    keys: list[str] = []
    for element in query:
        if element.VR == "SQ":
            for item in element.value[:1]:
                keys += findscu_keys(item, f"{prefix}{element.keyword}[0].")
            if not element.value:
                keys += ["-k", f"{prefix}{element.keyword}"]
        else:
            value = "" if element.value is None else str(element.value)
            keys += ["-k", f"{prefix}{element.keyword}={value}" if value else f"{prefix}{element.keyword}"]
    return keys


class FindscuClient:
    """DCMTK `findscu` as the modality: a C++ client whose per-answer cost is far below
    pynetdicom's, so an SCP's own answer path shows where the pynetdicom client would
    hide it behind its own floor. One process per query (fresh association, ~20 ms of
    start-up included); `-q` while timed, the answers counted on the checked run."""

    def __init__(self, findscu: str = "findscu") -> None:
        self._findscu = findscu

    def find_fresh(self, scp: Scp, query: Dataset, *, collect: bool = False) -> FindResult:
        command = [self._findscu, "-W", "-aet", CALLING_AE, "-aec", scp.ae_title, *findscu_keys(query)]
        if not collect:
            command.append("-q")
        command += ["127.0.0.1", str(scp.port)]
        env = {**os.environ, "TCP_NODELAY": "1"}
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", env=env, check=False)
        seconds = time.perf_counter() - started
        status = 0x0000 if done.returncode == 0 else -1
        if not collect:
            return FindResult(seconds, -1, status)
        found = re.findall(r"\(0008,0050\) SH \[([^\]]*)\]", done.stderr + done.stdout)
        accessions = [accession.strip() for accession in found]
        return FindResult(seconds, len(accessions), status, accessions)
