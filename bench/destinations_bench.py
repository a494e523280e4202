"""#17.3: MPPS COMPLETED → the HL7 status at the RIS while an Image Manager never answers.

Like part C (status_bench), with one more outbox destination: an Image Manager that
takes each connection and each message and never answers, so every attempt to it
costs its whole timeout. Each order's Procedure Scheduled waits for it; the RIS's
statuses should not. The broker runs in this process (SQLite in a temp dir).

    .venv/bin/python -m bench.destinations_bench --procedures 20 --timeout 5
"""

from __future__ import annotations

import argparse
import random
import socketserver
import tempfile
import threading
import time
from pathlib import Path

from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from bench import hl7_load, servers, stats
from bench.procs import free_port
from bench.status_bench import FIRST_INDEX, POLL_SECONDS, TimedRis, _completed, _create
from bench.worklist import Item, order_message
from broker.app import Broker
from broker.config import BrokerConfig
from broker.store.migrate import upgrade


class SilentPeer:
    """An MLLP peer that reads everything and answers nothing."""

    def __init__(self) -> None:
        self.port = free_port()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while self.request.recv(65536):
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run(procedures: int, timeout: float) -> list[float]:
    ris, silent = TimedRis(), SilentPeer()
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'broker.db'}"
        upgrade(url, create=True)
        config = BrokerConfig.model_validate({
            "profile": str(servers.BENCH_PROFILE),
            "database": {"url": url},
            "hl7": {"host": "127.0.0.1", "port": free_port()},
            "dicom": {"ae_title": servers.BROKER_AE, "host": "127.0.0.1", "port": free_port()},
            "ris": {"host": "127.0.0.1", "port": ris.port},
            "image_managers": [{"name": "pacs", "host": "127.0.0.1", "port": silent.port, "timeout_seconds": timeout}],
            "outbox": {"poll_seconds": POLL_SECONDS, "retry_initial_seconds": 1, "retry_max_seconds": 10},
        })  # fmt: skip
        broker = Broker(config)
        broker.start()
        try:
            return _latencies(broker, ris, procedures)
        finally:
            broker.stop()
            ris.close()
            silent.close()


def _latencies(broker: Broker, ris: TimedRis, procedures: int) -> list[float]:
    items = [Item(FIRST_INDEX + n) for n in range(procedures)]
    hl7_load.send(broker.hl7.port, [order_message(item, f"D{item.index}") for item in items], 1)
    ae = AE(ae_title="BENCHMOD")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    pauses, latencies = random.Random(7), []
    for n, item in enumerate(items):
        time.sleep(pauses.uniform(0, POLL_SECONDS))
        uid = f"1.2.392.200036.9999.78.{n}"
        assoc = ae.associate("127.0.0.1", broker.dicom.port, ae_title=servers.BROKER_AE)  # a wait may outlast idle
        assoc.send_n_create(_create(item), ModalityPerformedProcedureStep, uid)
        assoc.send_n_set(_completed(), ModalityPerformedProcedureStep, uid)
        done = time.perf_counter()
        assoc.release()
        latencies.append(ris.wait(item.placer, timeout=120) - done)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procedures", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0, help="the silent Image Manager's timeout (s)")
    args = parser.parse_args()
    latencies = run(args.procedures, args.timeout)
    figures = ", ".join(f"{name} {(stats.percentile(latencies, p) or 0) * 1000:.0f} ms" for name, p in _SHOWN)
    print(f"RIS CM latency, silent Image Manager (timeout {args.timeout:g} s), {args.procedures} procedures: {figures}")


_SHOWN = (("p50", 50), ("p95", 95), ("max", 100))


if __name__ == "__main__":
    main()
