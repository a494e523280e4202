"""What the HTTP handlers work with, handed in by the composition root (no globals):
the engine for read queries and the actors for the few changes operators may make."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine

from broker.actors.order_filler import OrderFiller
from broker.actors.pps_manager import PpsManager
from broker.actors.worklist_provider import WorklistProvider
from broker.config import DicomConfig
from broker.domain.ports import AuditLog
from broker.domain.query_log import QueryLog
from broker.gate import FifoGate
from broker.hl7.intake import Hl7Intake
from broker.jobs.dead_letters import DeadLetters
from broker.mapping.profile import Profile
from broker.metrics import Metrics
from broker.store.outbox import SqlOutboxQueue
from broker.store.watch import StoreWatch


@dataclass(frozen=True)
class WebContext:
    engine: Engine
    intake: Hl7Intake
    pps_manager: PpsManager
    outbox: SqlOutboxQueue
    dead_letters: DeadLetters
    metrics: Metrics
    #: The DICOMweb worklist and MPPS services (broker.web.dicomweb) work with these.
    worklist: WorklistProvider
    profile: Profile
    audit: AuditLog | None
    dicom: DicomConfig
    queries: QueryLog
    #: The SQLite file as opened, watched (store/watch.py): /ready reports it.
    store: StoreWatch
    #: Orders entered at the console go through it as HL7 orders do (broker.web.orders).
    order_filler: OrderFiller
    #: Worklist searches take their turn in the same line as C-FINDs (broker/gate.py).
    worklist_turns: FifoGate


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.context
    return found
