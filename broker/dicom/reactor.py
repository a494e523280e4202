"""Association threads that sleep until something happens, and one writer per socket.

pynetdicom 3.0.4 serves each association with two threads that poll: the DUL reactor
checks its socket and queues every millisecond (`_run_loop_delay = 0.001`, a zero-timeout
select) and the association reactor sleeps 1 ms between checks of its queues; fifty idle
associations kept the broker above one core (issue #17). Here both threads block: the
DUL thread in `select` on its socket and a wake-up socket pair (written whenever a
primitive is queued for it), with the ARTIM deadline as timeout; the association thread
on an Event set whenever the DUL hands it something, with the network (idle) timeout as
timeout. An idle association wakes neither.

The DUL thread is also the socket's only reader and writer (issue #15): `ssl.SSLSocket`
does not support a read on one thread while another writes. The worklist's pending
answers (broker/dicom/pending.py) are handed to it as ready P-DATA-TF bytes (`write`), in
one queue with pynetdicom's own primitives, so the final status, an A-ABORT or the
A-RELEASE-RP follow them in order; a failed write closes the connection and is reported
back instead of being taken as sent.

pynetdicom's RequestHandler builds the association, its DUL and its socket together, so
the instances are re-classed (as `PduGuard` does with the socket) rather than replaced.
These classes serve acceptors only. The internals they rely on are pinned with
pynetdicom's version in pyproject.toml and checked by tests/unit/test_dicom_reactor_canary.py.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar, cast

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_FIND, DimsePrimitiveType
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.timer import Timer
from pynetdicom.utils import make_target

from broker.dicom.pdata import command_set, p_data
from broker.dicom.status import CANCEL, SUCCESS

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Final C-FIND statuses written as bytes: Success and Cancel (PS3.4 C.4.1.1.4).
FINAL_AS_BYTES = frozenset({SUCCESS, CANCEL})
#: PS3.8 9.2 states in which a P-DATA-TF may be sent (DT-1, AR-7).
P_DATA_STATES = frozenset({"Sta6", "Sta8"})
#: Answers queued ahead of the socket: enough to keep it busy while the next ones are
#: built, few enough that a C-CANCEL stops the answer soon.
MAX_QUEUED_BYTES = 16 * 1024


class _SignallingQueue(queue.Queue[_T]):
    """A queue that calls `signal` after each put, so its reader can block on one event."""

    def __init__(self, signal: Callable[[], None]) -> None:
        super().__init__()
        self._signal = signal

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._signal()


class _ArtimTimer(Timer):
    """pynetdicom's ARTIM timer, which also tells the reactor how long it may sleep."""

    running = False

    def start(self) -> None:
        super().start()
        self.running = True

    def stop(self) -> None:
        super().stop()
        self.running = False

    def seconds_left(self) -> float | None:
        if not self.running or self.timeout is None:
            return None
        return max(self.remaining, 0.0)


class _Answers:
    """Ready P-DATA-TF bytes in the DUL's queue, one item per answer (not a pynetdicom
    primitive)."""

    __slots__ = ("items", "size")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self.size = sum(len(item) for item in items)


class EventDrivenDUL(DULServiceProvider):
    """The DUL reactor of one accepted association, run from readiness events."""

    write_failed: bool
    artim_timer: _ArtimTimer
    _wake_user: Callable[[], None]
    _wake_r: socket.socket
    _wake_w: socket.socket
    _writable: threading.Condition
    _queued: int
    _open: bool

    @classmethod
    def install(cls, dul: DULServiceProvider, wake_user: Callable[[], None]) -> EventDrivenDUL:
        dul.__class__ = cls
        new = cast(EventDrivenDUL, dul)
        new._wake_r, new._wake_w = socket.socketpair()
        new._wake_r.setblocking(False)
        new._wake_w.setblocking(False)
        new.to_provider_queue = _SignallingQueue(new._poke)
        new.to_user_queue = _SignallingQueue(wake_user)
        new.artim_timer = _ArtimTimer(dul.artim_timer.timeout)
        new._writable, new._queued, new._open, new.write_failed = threading.Condition(), 0, True, False
        new._wake_user = wake_user
        return new

    def write(self, answers: list[bytes], while_full: Callable[[], AbstractContextManager[None]] = nullcontext) -> bool:
        """Queue `answers` (each whole P-DATA-TF PDUs) to be sent after everything queued
        before; wait while too much is queued, inside `while_full` (the query gives its
        place up: broker/gate.py). False once the connection cannot take them: the
        association is aborted or closed, or a write failed. One C-FIND is served at a
        time per association, so no other writer fills the room between the wait and
        the put."""
        item = _Answers(answers)
        with self._writable:
            full = not self._has_room()
        if full:
            with while_full(), self._writable:
                self._writable.wait_for(self._has_room)
        with self._writable:
            if not self._open or self.state_machine.current_state not in P_DATA_STATES:
                return False
            self._queued += item.size
        self.to_provider_queue.put(cast(Any, item))
        return True

    def _has_room(self) -> bool:
        return self._queued < MAX_QUEUED_BYTES or not self._open

    def run(self) -> None:
        """pynetdicom gave the thread its own `run_reactor` as target when it built the
        DUL, before the instance was re-classed."""
        make_target(self.run_reactor)()

    def run_reactor(self) -> None:
        self._idle_timer.start()
        self.assoc._dul_ready.set()
        try:
            while not self._kill_thread:
                if not self._step():
                    self._wait()
        finally:
            self._close_link()
            self._wake_r.close()
            self._wake_w.close()
            self._wake_user()  # the association sees its DUL gone

    def _step(self) -> bool:
        """One turn of pynetdicom's reactor: send a queued primitive, read a PDU if one
        is there, then act on one state machine event. False when there was nothing to do."""
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            busy = self._process_recv_primitive()
            # Read even when something was sent: a C-CANCEL must get in between answers.
            if self._has_transport() and self._is_transport_event():
                self._idle_timer.restart()
                busy = True
        except Exception:
            log.exception("DICOM association reactor failed, aborting the association")
            self._abort_now()
            return True
        try:
            event = self.event_queue.get(block=False)
        except queue.Empty:
            return busy
        self.state_machine.do_action(event)
        return True

    def _wait(self) -> None:
        """Sleep until the socket is readable, something is queued, or ARTIM expires."""
        watched: list[Any] = [self._wake_r]
        sock = self.socket.socket if self.socket is not None else None
        if sock is not None and self._has_transport() and sock.fileno() >= 0:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return  # decrypted bytes already buffered: select cannot see them
            watched.append(sock)
        readable, _, _ = select.select(watched, [], [], self.artim_timer.seconds_left())
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while self._wake_r.recv(4096):
                    pass

    def _has_transport(self) -> bool:
        """An acceptor in Sta1 has no connection any more (or not yet: Evt5 is queued
        first); after a failed write nothing more is read."""
        return self.state_machine.current_state != "Sta1" and not self.write_failed

    def _process_recv_primitive(self) -> bool:
        try:
            head = self.to_provider_queue.queue[0]
        except IndexError:
            return False
        if isinstance(head, _Answers):
            self._send_answers(self._take_answers())
            return True
        if self.state_machine.current_state == "Sta1":
            # The connection is gone: pynetdicom would raise InvalidEventError for a
            # final status or an A-ABORT the handler sends after it went.
            self.to_provider_queue.get(block=False)
            return True
        return super()._process_recv_primitive()

    def _take_answers(self) -> list[bytes]:
        """Every answer queued in a row, to go out as one write: one sendall and one
        wake-up of the writer per batch. Sent one at a time, the full queue made the
        handler and this thread trade the GIL once per answer (issue #17: twice the
        transport CPU for a 10k-answer query)."""
        pending = self.to_provider_queue
        batch: list[bytes] = []
        with pending.mutex:  # the queue's own lock; only this thread takes from it
            while pending.queue and isinstance(pending.queue[0], _Answers):
                batch += cast(_Answers, pending.queue.popleft()).items
        return batch

    def _send_answers(self, batch: list[bytes]) -> None:
        """One write for the batch; EVT_DATA_SENT still once per answer, as before. The
        room is given back after the batch is out, so the handler stays at most
        MAX_QUEUED_BYTES ahead of the socket, and a C-CANCEL read after this batch stops it soon."""
        if not (self._open and self.state_machine.current_state in P_DATA_STATES):
            self._close_link()
        elif self._write(b"".join(batch), notify=False):
            for data in batch:
                evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": data})
        with self._writable:
            self._queued -= sum(len(data) for data in batch)
            self._writable.notify_all()

    def _send(self, pdu: Any) -> None:
        """pynetdicom's PDU writer (used by the state machine), through `_write`."""
        if self.socket is not None and self._write(pdu.encode()):
            evt.trigger(self.assoc, evt.EVT_PDU_SENT, {"pdu": pdu})

    def _write(self, data: bytes, *, notify: bool = True) -> bool:
        """The only write on this association's socket. A failure closes the connection
        (Evt17, as pynetdicom does for its own writes) and is remembered. `notify`:
        trigger EVT_DATA_SENT for `data` (the caller does it otherwise)."""
        sock = self.socket.socket if self.socket is not None else None
        try:
            if sock is None:
                raise ConnectionError("connection already closed")
            sock.sendall(data)
        except (OSError, ValueError) as exc:
            log.warning("DICOM write to %s failed: %s", self.assoc.requestor.address, exc)
            self.write_failed = True
            self._close_link()
            self.event_queue.put("Evt17")
            return False
        if notify:
            evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": data})
        return True

    def _abort_now(self) -> None:
        """pynetdicom's answer to a reactor failure: an A-ABORT past the state machine,
        whose state can no longer be trusted, and a hard stop."""
        abort = A_ABORT_RQ()
        abort.source, abort.reason_diagnostic = 0x02, 0x00
        self._write(abort.encode())
        self.assoc.is_aborted, self.assoc.is_established = True, False
        self.assoc._kill = True
        self._kill_thread = True

    def _close_link(self) -> None:
        with self._writable:
            self._open = False
            self._writable.notify_all()

    def _poke(self) -> None:
        # OSError: buffer full (a wake-up is already pending) or closed (the reactor is gone)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def kill_dul(self) -> None:
        self._kill_thread = True
        self._poke()

    def stop_dul(self) -> bool:
        """Stop the reactor once in Sta1 (pynetdicom's contract), waiting for it without polling."""
        if self.state_machine.current_state != "Sta1":
            return False
        self.kill_dul()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
        return True


class RawFinalStatus(DIMSEServiceProvider):
    """An acceptor's DIMSE provider that writes a C-FIND's final response (Success or
    Cancel, no data set) as ready bytes, as the pending answers before it are
    (broker/dicom/pending.py), through the DUL's queue in order after them. pynetdicom
    builds and encodes a command Dataset for it: 14 % of a worklist query's time with
    50 clients querying. Any other message goes through pynetdicom; EVT_DIMSE_SENT is
    not triggered for these two (nothing in the broker listens to it)."""

    def send_msg(self, primitive: DimsePrimitiveType, context_id: int) -> None:
        command = final_find_status(primitive)
        if command is None or not isinstance(self.dul, EventDrivenDUL):
            super().send_msg(primitive, context_id)
            return
        # False: the connection is gone, as pynetdicom's own send would find
        self.dul.write([p_data(context_id, command, self.maximum_pdu_size, command=True)])


def final_find_status(primitive: DimsePrimitiveType) -> bytes | None:
    """The command set of a C-FIND-RSP that carries nothing but Success or Cancel."""
    if not isinstance(primitive, C_FIND) or primitive.MessageIDBeingRespondedTo is None:
        return None
    if primitive.Identifier is not None or primitive.ErrorComment is not None or primitive.OffendingElement:
        return None
    if primitive.Status not in FINAL_AS_BYTES or primitive.AffectedSOPClassUID is None:
        return None
    return command_set(
        str(primitive.AffectedSOPClassUID), primitive.MessageIDBeingRespondedTo, primitive.Status, data_set=False
    )


class EventDrivenAssociation(Association):
    """An acceptor whose reactor waits for messages instead of sleeping 1 ms per turn."""

    _wake: threading.Event

    @classmethod
    def install(cls, assoc: Association) -> None:
        assoc.__class__ = cls
        new = cast(EventDrivenAssociation, assoc)
        new._wake = threading.Event()
        new.dimse.msg_queue = _SignallingQueue(new._wake.set)
        new.dimse.__class__ = RawFinalStatus
        EventDrivenDUL.install(assoc.dul, new._wake.set)

    def _run_reactor(self) -> None:
        """pynetdicom's acceptor loop (serve a DIMSE message; end on release, abort, a
        dead DUL or the network timeout), blocking between turns. The event is cleared
        before each turn's checks, so a message queued during them wakes the next wait."""
        self._is_paused = False
        while not self._kill:
            self._wake.clear()
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False
            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, cast(int, context_id))
            if self._ended():
                return
            if self.dimse.msg_queue.empty():
                self._wake.wait(self._idle_seconds_left())

    def _idle_seconds_left(self) -> float | None:
        if self.network_timeout is None:
            return None
        return max(self.dul._idle_timer.remaining, 0.0)

    def _ended(self) -> bool:
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            log.debug("association released")
            self.is_released, self.is_established = True, False
            evt.trigger(self, evt.EVT_RELEASED, {})
        elif self.acse.is_aborted():
            log.debug("association aborted")
            self.dul.receive_pdu(wait=False)  # EVT_ACSE_RECV fires for subscribers
            self.is_aborted, self.is_established = True, False
            evt.trigger(self, evt.EVT_ABORTED, {})
        elif self.dul.idle_timer_expired():
            log.warning("closing DICOM association from %s: network timeout", self.requestor.address)
            self.abort()
        elif self.dul.is_alive():
            return False
        self.kill()
        return True
