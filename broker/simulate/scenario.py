"""IHE Scheduled Workflow test cases as data (`scenarios/*.yaml`) and their runner.

A scenario is a list of steps; each does one thing (send an HL7 message, query the
worklist, send an MPPS) or checks what a peer received since the last check (status
messages at the RIS, RAD-4/13 and forwarded MPPS at the Image Manager). Every step
prints what was exchanged and PASS or FAIL. The first failure, expected or not, ends
the run (exit 1): later steps build on earlier ones, and going on would send what the
scenario never meant, e.g. an MPPS for the items of a failed query, which the Order
Filler keeps as an unscheduled exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator
from pydicom.dataset import Dataset

from broker.simulate.hl7_peer import Hl7Client, Hl7Receiver, load_message
from broker.simulate.hl7_peer import field as hl7_field
from broker.simulate.image_manager import ImageManagerSimulator, check_procedure_message
from broker.simulate.modality import ModalitySimulator, n_create_attributes, n_set_attributes, worklist_query
from broker.yaml_models import read_mapping, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Send(_Strict):
    message: str  # a catalog name (hl7/...) or a path
    ack: str = "AA"


class Worklist(_Strict):
    station: str = ""
    keys: dict[str, str] = {}
    count: int
    #: Keyword (or `Sequence.Keyword`, first item) → value every answer must carry.
    fields: dict[str, str] = {}


class MppsCreate(_Strict):
    #: True: no worklist item is quoted (trauma); else every item of the last query.
    unscheduled: bool = False
    station: str = "CT01"
    status: int = 0


class MppsSet(_Strict):
    to: str  # COMPLETED | DISCONTINUED
    status: int = 0


class Received(_Strict):
    """The next `count` messages a peer received each carry `fields` (`SEG-n` → value)."""

    count: int = 1
    fields: dict[str, str] = {}
    within: float = 10.0


class Forwarded(_Strict):
    """The next forwarded MPPS operations, as `create IN PROGRESS`, `set COMPLETED`."""

    operations: list[str]
    within: float = 10.0


class Step(_Strict):
    title: str = ""
    send: Send | None = None
    worklist: Worklist | None = None
    mpps_create: MppsCreate | None = None
    mpps_set: MppsSet | None = None
    ris: Received | None = None
    image_manager: Received | None = None
    forwarded_mpps: Forwarded | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [name for name in _ACTIONS if getattr(self, name) is not None]
        if len(actions) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(_ACTIONS)} (found: {actions or 'none'})")
        return self

    @property
    def action(self) -> str:
        return next(name for name in _ACTIONS if getattr(self, name) is not None)


_ACTIONS = ("send", "worklist", "mpps_create", "mpps_set", "ris", "image_manager", "forwarded_mpps")


class Scenario(_Strict):
    name: str
    description: str = ""
    steps: list[Step]


class ScenarioError(Exception):
    """A scenario file that cannot be used."""


def load_scenario(path: Path) -> Scenario:
    return validate(Scenario, read_mapping(path, ScenarioError), path, ScenarioError)


class StepFailed(Exception):
    pass


@dataclass
class Peers:
    """Where the scenario sends and what listens for the Order Filler's messages."""

    hl7: Hl7Client
    modality: ModalitySimulator
    ris: Hl7Receiver
    image_manager: ImageManagerSimulator


@dataclass
class _State:
    items: list[Dataset] = field(default_factory=list)
    mpps_uid: str = ""
    seen: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(self, peers: Peers, out: Callable[[str], None] = print) -> None:
        self._peers = peers
        self._out = out
        self._state = _State()

    def run(self, scenario: Scenario) -> bool:
        self._out(f"scenario: {scenario.name}")
        for number, step in enumerate(scenario.steps, 1):
            self._out(f"[{number}] {step.title or step.action}")
            try:
                getattr(self, f"_{step.action}")(getattr(step, step.action))
            except Exception as exc:  # any failure stops the run, a defect in a peer included
                self._out(f"    FAIL: {exc if isinstance(exc, StepFailed) else f'{type(exc).__name__}: {exc}'}")
                left = len(scenario.steps) - number
                self._out(
                    f"{scenario.name}: FAIL at step {number}" + (f", {left} later step(s) not run" if left else "")
                )
                return False
            self._out("    PASS")
        self._out(f"{scenario.name}: PASS")
        return True

    def _send(self, step: Send) -> None:
        message = load_message(step.message)
        code, text = self._peers.hl7.send(message)
        self._out(f"    -> {step.message} ({hl7_field(message, 'MSH-9')})  <- {code} {text}".rstrip())
        _expect(code == step.ack, f"answer {code}, expected {step.ack}")

    def _worklist(self, step: Worklist) -> None:
        status, items = self._peers.modality.query(worklist_query(step.station, **step.keys))
        self._out(
            f"    -> C-FIND station={step.station or '*'} {step.keys or ''}  <- 0x{status:04X}, {len(items)} item(s)"
        )
        for item in items:
            self._out("       " + " ".join(_keyword(item, k) for k in _SHOWN))
        _expect(status == 0, f"C-FIND status 0x{status:04X}")
        _expect(len(items) == step.count, f"{len(items)} worklist items, expected {step.count}")
        for item in items:
            for keyword, value in step.fields.items():
                _expect(
                    _keyword(item, keyword) == value, f"{keyword} is {_keyword(item, keyword)!r}, expected {value!r}"
                )
        self._state.items = items

    def _mpps_create(self, step: MppsCreate) -> None:
        items = [] if step.unscheduled else self._state.items
        status, uid = self._peers.modality.create(n_create_attributes(items, step.station))
        self._out(f"    -> N-CREATE IN PROGRESS for {len(items)} scheduled step(s)  <- 0x{status:04X}")
        _expect(status == step.status, f"N-CREATE status 0x{status:04X}, expected 0x{step.status:04X}")
        self._state.mpps_uid = uid

    def _mpps_set(self, step: MppsSet) -> None:
        status = self._peers.modality.update(self._state.mpps_uid, n_set_attributes(step.to))
        self._out(f"    -> N-SET {step.to}  <- 0x{status:04X}")
        _expect(status == step.status, f"N-SET status 0x{status:04X}, expected 0x{step.status:04X}")

    def _ris(self, step: Received) -> None:
        self._received("RIS", self._peers.ris, step, lambda _: [])

    def _image_manager(self, step: Received) -> None:
        self._received("Image Manager", self._peers.image_manager.hl7, step, check_procedure_message)

    def _received(self, who: str, receiver: Hl7Receiver, step: Received, check: Callable[[bytes], list[str]]) -> None:
        start = self._state.seen.get(who, 0)
        if step.count == 0:
            time.sleep(step.within)
        messages = receiver.wait_for(start + step.count, step.within)[start:]
        self._state.seen[who] = start + len(messages)
        for message in messages:
            summary = " ".join(f"{k}={hl7_field(message, k)}" for k in ("MSH-9", "ORC-1", "ORC-5"))
            self._out(f"    <- {who}: {summary}")
        _expect(len(messages) == step.count, f"{who} received {len(messages)} message(s), expected {step.count}")
        for message in messages:
            problems = check(message)
            _expect(not problems, "; ".join(problems))
            for location, value in step.fields.items():
                got = hl7_field(message, location)
                _expect(got == value or got.split("^")[0] == value, f"{location} is {got!r}, expected {value!r}")

    def _forwarded_mpps(self, step: Forwarded) -> None:
        recorder = self._peers.image_manager.mpps
        start = self._state.seen.get("mpps", 0)
        deadline = time.monotonic() + step.within
        while len(recorder.received) < start + len(step.operations) and time.monotonic() < deadline:
            time.sleep(0.05)
        got = recorder.received[start:]
        self._state.seen["mpps"] = start + len(got)
        operations = [f"{m.operation} {m.status}".strip() for m in got]
        self._out(f"    <- Image Manager MPPS: {operations}")
        _expect(operations == step.operations, f"expected {step.operations}")
        _expect(not any(m.problem for m in got), "; ".join(m.problem for m in got if m.problem))


_SHOWN = ("AccessionNumber", "ScheduledProcedureStepSequence.ScheduledProcedureStepID", "PatientName")


def _keyword(item: Dataset, path: str) -> str:
    sequence, _, keyword = path.rpartition(".")
    if sequence:
        items = item.get(sequence) or [Dataset()]
        item = items[0]
    return str(item.get(keyword, ""))


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise StepFailed(failure)
