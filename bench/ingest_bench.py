"""Part B: HL7 ingest. ORM^O01 NW over MLLP to a fresh broker, which ACKs each only
after its SQLite commit, next to a do-nothing MLLP server, with the same client and the
same messages, over 1 and over several concurrent connections.

The two servers take turns (broker, floor, for each connection count) so a noisy
moment of the machine is less likely to land on one of them only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import hl7_load, servers
from bench.hl7_load import LoadResult
from bench.procs import Peers
from bench.worklist import Item, order_message

BROKER, FLOOR = "broker", "floor"
#: Item numbers far from part A's, so every order is new to the broker.
FIRST_INDEX = 10_000_000


@dataclass
class IngestRow:
    connections: int
    results: dict[str, LoadResult] = field(default_factory=dict)


@dataclass
class IngestResults:
    messages: int
    warmup: int
    sqlite_synchronous: str
    rows: list[IngestRow] = field(default_factory=list)


class _Messages:
    """Distinct orders, handed out in batches: a resent control ID or placer number
    would be answered from the duplicate check, not stored."""

    def __init__(self) -> None:
        self._next = FIRST_INDEX

    def take(self, count: int) -> list[bytes]:
        first, self._next = self._next, self._next + count
        return [order_message(Item(i), f"B{i:08d}") for i in range(first, first + count)]


def run(
    workdir: Path, peers: Peers, messages: int, connections: list[int], warmup: int, sqlite_synchronous: str
) -> IngestResults:
    results = IngestResults(messages, warmup, sqlite_synchronous)
    broker = servers.BrokerServer(workdir / "broker-b", max_matches=1000, sqlite_synchronous=sqlite_synchronous)
    floor, floor_port = servers.mllp_floor(workdir)
    peers.start(broker.peer)
    peers.start(floor)
    ports = {BROKER: broker.hl7_port, FLOOR: floor_port}
    supply = _Messages()
    try:
        for port in ports.values():
            hl7_load.send(port, supply.take(warmup), 1)
        for count in connections:
            row = IngestRow(count)
            for name, port in ports.items():
                print(
                    f"[B] {messages} messages over {count} connection(s) to the {name} ...", file=sys.stderr, flush=True
                )
                row.results[name] = hl7_load.send(port, supply.take(messages), count)
            results.rows.append(row)
    finally:
        peers.stop(floor)
        peers.stop(broker.peer)
    return results
