"""A bounded live fuzz run against `broker serve` (RELIABILITY.md F1, F2): malformed
MLLP frames (no VT, no FS, nested VT, oversize, binary, mutated messages) and mutated
DICOM PDUs (A-ASSOCIATE-RQ, P-DATA, A-RELEASE-RQ: fields, lengths, bytes) go to the
running listeners, each on its own connection. Every listener survives and keeps
serving: after every CHECK_EVERY inputs a valid message is ACKed (AA) and a C-ECHO
succeeds (the slowest is printed; over 10 s counts as a hang); the process is alive at
the end and its threads are back to baseline. Also the MLLP frame cap and idle timeout.
The seed is fixed (FUZZ_SEED=random for a fresh one, FUZZ_SEED=N to replay); the size
is FUZZ_INPUTS (1,000 per listener; `make soak` runs 100,000)."""

from __future__ import annotations

import errno
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.hl7.mllp import END, START, exchange, wrap
from support.hl7peer import ack_code, sample
from support.measure import no_hang, seed, size, steady_threads
from support.net import free_port
from support.pdus import COMMAND_LAST, associate_rq, c_echo_rq, p_data, pdu
from support.processes import BrokerProcess
from support.senders import echo

pytestmark = pytest.mark.e2e

INPUTS = size("FUZZ_INPUTS", 1000)  # per listener
CHECK_EVERY = max(100, INPUTS // 100)
MAX_FRAME = 64 * 1024
IDLE = 1.0
SEED = seed("FUZZ", 20261202)
CATALOG = sorted((Path(__file__).resolve().parents[2] / "hl7").rglob("*.hl7"))


@pytest.fixture(scope="module")
def fuzzed_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    process = BrokerProcess(
        tmp_path,
        free_port(),
        f"sqlite:///{tmp_path / 'broker.db'}",
        hl7={"max_frame_bytes": MAX_FRAME, "idle_timeout_seconds": IDLE},
        # Some mutated requests hold their association until the network timeout (2 s
        # here); 1000 slots keep those from hiding whether the listener still serves.
        dicom={"acse_timeout_seconds": 2, "network_timeout_seconds": 2, "max_associations": 1000},
    ).start()
    yield process
    process.kill()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One of a few byte-level mutations (AFL's havoc, much reduced)."""
    buf = bytearray(data)
    at = rng.randrange(len(buf)) if buf else 0
    match rng.randrange(6):
        case 0 if buf:
            buf[at] ^= 1 << rng.randrange(8)
        case 1 if buf:
            buf[at] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x0B, 0x1C, 0x0D])
        case 2:
            buf[at:at] = rng.randbytes(rng.randrange(1, 64))
        case 3:
            del buf[at : at + rng.randrange(1, 64)]
        case 4 if len(buf) >= 4:
            at = min(at, len(buf) - 4)
            buf[at : at + 4] = struct.pack(">L", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(buf), at]))
        case _:
            buf += buf[at:]
    return bytes(buf)


def mllp_input(rng: random.Random) -> bytes:
    message = CATALOG[rng.randrange(len(CATALOG))].read_bytes().replace(b"\n", b"\r")
    for _ in range(rng.randrange(4)):
        message = _mutate(message, rng)
    shapes: list[Callable[[], bytes]] = [
        lambda: wrap(message),
        lambda: message + END,  # no VT
        lambda: START + message,  # no FS
        lambda: START + START + message[:40] + START + message + END,  # nested VT
        lambda: START + rng.randbytes(MAX_FRAME + 1),  # oversize: the connection is closed
        lambda: rng.randbytes(rng.randrange(1, 2000)),  # binary
        lambda: wrap(rng.randbytes(rng.randrange(0, 500))),  # binary in a frame
        lambda: START + END + START + b"\x1c" + message + b"\x1c\x1c\r",
    ]
    shape: Callable[[], bytes] = rng.choice(shapes)
    return shape()


def dicom_input(rng: random.Random) -> bytes:
    seeds = [
        associate_rq(),
        associate_rq() + p_data(COMMAND_LAST, c_echo_rq()) + pdu(0x05, bytes(4)),
        associate_rq(max_length=0) + p_data(COMMAND_LAST, c_echo_rq()) * 3,
    ]
    data = rng.choice(seeds)
    for _ in range(rng.randrange(1, 4)):
        data = _mutate(data, rng)
    return data


def deliver(port: int, data: bytes) -> str:
    """Send `data` on a fresh connection, end the sending side, read until the broker
    closes; returns how it ended. More than 10 s is a hang."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return "hang"
        except OSError as error:
            # The broker may refuse and close before the last byte is sent: then the
            # write or the shutdown fails (EPIPE, ECONNRESET, ENOTCONN). Any other error
            # is the test's own and is raised.
            if isinstance(error, ConnectionError) or error.errno == errno.ENOTCONN:
                return "reset"
            raise
    return "answered" if received else "closed"


def threads(process: BrokerProcess) -> int:
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def settled_threads(process: BrokerProcess, baseline: int) -> int:
    """The process's thread count once finished associations have ended (≤ 5 s)."""
    deadline = time.monotonic() + 5
    while (count := threads(process)) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def fuzz(
    process: BrokerProcess, port: int, make: Callable[[random.Random], bytes], still_serving: Callable[[int], float]
) -> Counter[str]:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    for n in range(1, INPUTS + 1):
        outcomes[deliver(port, make(rng))] += 1
        if n % CHECK_EVERY == 0:
            slowest = max(slowest, still_serving(n))
    assert process.process is not None and process.process.poll() is None, f"seed {SEED}: broker died"
    outcomes["slowest check ms"] = round(slowest * 1000)
    return outcomes


def valid_hl7(port: int) -> Callable[[int], float]:
    def check(n: int) -> float:
        started = time.monotonic()
        message = sample("rad-1-patient-registration/adt_a04.hl7", ADT0001=f"FUZZCHECK{n}-{SEED}")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert ack_code(exchange(sock, message)) == "AA", f"seed {SEED}: after {n} inputs"
        return no_hang(time.monotonic() - started, f"seed {SEED}: ACK after {n} inputs")

    return check


def valid_echo(port: int) -> Callable[[int], float]:
    def check(n: int) -> float:
        return no_hang(float(echo(port)), f"seed {SEED}: C-ECHO after {n} inputs")

    return check


@pytest.mark.timeout(max(300, INPUTS * 0.3))
@pytest.mark.parametrize("listener", ["MLLP", "DICOM"])
def test_listener_survives_hostile_input_and_keeps_serving(fuzzed_broker: BrokerProcess, listener: str) -> None:
    assert fuzzed_broker.process is not None
    baseline = steady_threads(fuzzed_broker.process.pid)
    if listener == "MLLP":
        port, make, check = fuzzed_broker.hl7_port, mllp_input, valid_hl7
    else:
        port, make, check = fuzzed_broker.dicom_port, dicom_input, valid_echo
    outcomes = fuzz(fuzzed_broker, port, make, check(port))
    settled = settled_threads(fuzzed_broker, baseline)
    print(f"\n{listener}: {INPUTS} inputs (seed {SEED}): {dict(outcomes)}, threads {baseline} → {settled}")
    assert outcomes["hang"] == 0
    assert settled <= baseline


def test_mllp_frame_over_the_cap_closes_the_connection(fuzzed_broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", fuzzed_broker.hl7_port), timeout=5) as sock:
        sock.sendall(START + b"A" * (MAX_FRAME + 1))
        assert sock.recv(100) == b""  # closed, no answer, nothing buffered past the cap


def test_idle_mllp_connection_closed_after_the_idle_timeout(fuzzed_broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", fuzzed_broker.hl7_port), timeout=5) as sock:
        sock.sendall(START + b"MSH|")  # half a frame, then silence
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started <= IDLE + 1
