"""CPU of the broker while it holds idle associations (issue #17, "200 idle associations
held: broker CPU <= 5 % of one core").

Starts `broker serve` (bench/servers.py), opens N associations from raw sockets (a
pynetdicom SCU would poll in this process and load the machine being measured), leaves
them idle and reads the broker's utime+stime from /proc/<pid>/stat over a window.

    python -m bench.idle_cpu --counts 0,50,200 --seconds 10
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import yaml

from bench.servers import BrokerServer
from tests.support.pdus import associate_rq, read_pdu


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads), /proc/<pid>/stat fields 14 and 15."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hold(port: int, count: int) -> list[socket.socket]:
    peers = []
    for n in range(count):
        peer = socket.create_connection(("127.0.0.1", port), timeout=30)
        peer.sendall(associate_rq(calling=f"IDLE{n:04d}"))
        pdu_type, _ = read_pdu(peer)
        if pdu_type != 0x02:
            raise RuntimeError(f"association {n} not accepted (PDU type 0x{pdu_type:02X})")
        peers.append(peer)
    return peers


def measure(count: int, seconds: float, workdir: Path) -> float:
    """Percent of one core the broker used while holding `count` idle associations."""
    server = BrokerServer(workdir, max_matches=1000, sqlite_synchronous="NORMAL")
    config = yaml.safe_load(server.config.read_text())
    config["dicom"]["max_associations"] = count + 10
    server.config.write_text(yaml.safe_dump(config))
    peer = server.peer.start()
    try:
        assert peer.process is not None
        peers = hold(server.dicom_port, count)
        time.sleep(2)  # let start-up work settle
        before = cpu_seconds(peer.process.pid)
        time.sleep(seconds)
        used = cpu_seconds(peer.process.pid) - before
        for held in peers:
            held.close()
        return 100 * used / seconds
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="0,50,200")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(c) for c in args.counts.split(",")):
            percent = measure(count, args.seconds, Path(tmp) / f"n{count}")
            print(f"{count:4d} idle associations: broker CPU {percent:6.1f} % of one core", flush=True)


if __name__ == "__main__":
    main()
