"""What the HTTP handlers work with, handed in by the composition root (no globals):
the engine for read queries and the actors for the few changes operators may make."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine

from broker.actors.pps_manager import PpsManager
from broker.hl7.intake import Hl7Intake
from broker.metrics import Metrics
from broker.store.outbox import SqlOutboxQueue


@dataclass(frozen=True)
class WebContext:
    engine: Engine
    intake: Hl7Intake
    pps_manager: PpsManager
    outbox: SqlOutboxQueue
    metrics: Metrics


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.context
    return found
