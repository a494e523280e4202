"""Prometheus instruments of one broker, in a registry of its own (never the process
default), so two brokers in one process (the tests) count apart.

The adapters report what crossed their edge (an HL7 answer, a C-FIND, an MPPS
operation); the outbox gauges are read from the database when scraped, so every broker
on a shared PostgreSQL reports the same, true figure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from broker.mapping.hl7_in import accepted_message_types
from broker.store.outbox import OutboxHealth

log = logging.getLogger(__name__)

#: A message type label is one the broker applies, else "other": a label from the wire
#: would let a sender create series at will (500 random MSH-9 values made 3,000). Every
#: other label is the broker's own answer (ACK code, DIMSE status, MPPS state).
_MESSAGE_TYPES = frozenset(accepted_message_types())
_ACCEPTED = frozenset({"AA", "CA"})
#: Messages per group commit: one when a lone sender sends, up to the connections busy.
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
#: C-FIND answers take from milliseconds to seconds for large worklists.
_FIND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._hl7_received = Counter("broker_hl7_received", "HL7 messages received", ["message_type"], registry=r)
        self._hl7_acked = Counter(
            "broker_hl7_acked", "HL7 answers sent, by answer code", ["message_type", "code"], registry=r
        )
        self._hl7_errors = Counter(
            "broker_hl7_errors", "HL7 messages refused (AE/AR/CE/CR)", ["message_type", "code"], registry=r
        )
        self._hl7_together = Histogram(
            "broker_hl7_group_commit_messages",
            "HL7 messages committed in one transaction (group commit)",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self._finds = Counter("broker_cfind", "Worklist C-FIND requests, by final status", ["status"], registry=r)
        self._find_seconds = Histogram(
            "broker_cfind_duration_seconds",
            "Worklist C-FIND, request to final answer",
            buckets=_FIND_BUCKETS,
            registry=r,
        )
        self._find_aborted = Counter(
            "broker_cfind_aborted",
            "Worklist C-FIND answers abandoned because the connection could not take them (association aborted)",
            ["reason"],
            registry=r,
        )
        self._intake_restarts = Counter(
            "broker_hl7_intake_restarts",
            "HL7 intake processes started again after ending unasked (hl7.processes > 1)",
            registry=r,
        )
        self._mpps = Counter(
            "broker_mpps",
            "MPPS operations, by the status they left (or 'refused')",
            ["operation", "status"],
            registry=r,
        )

    def hl7_received(self, message_type: str, times: int = 1) -> None:
        """`times`: the count an intake process passes on (hl7/processes.py)."""
        self._hl7_received.labels(_type_label(message_type)).inc(times)

    def hl7_answered(self, message_type: str, code: str, times: int = 1) -> None:
        label = _type_label(message_type)
        self._hl7_acked.labels(label, code).inc(times)
        if code not in _ACCEPTED:
            self._hl7_errors.labels(label, code).inc(times)

    def hl7_committed_together(self, messages: int, times: int = 1) -> None:
        for _ in range(times):
            self._hl7_together.observe(messages)

    def find_answered(self, status: int, seconds: float) -> None:
        self._finds.labels(f"0x{status:04X}").inc()
        self._find_seconds.observe(seconds)

    def find_aborted(self, reason: str) -> None:
        """`reason`: write_failed (a write on the socket failed) or connection_lost."""
        self._find_aborted.labels(reason).inc()

    def mpps_done(self, operation: str, status: str) -> None:
        self._mpps.labels(operation, status).inc()

    def hl7_intake_restarted(self) -> None:
        self._intake_restarts.inc()

    def watch_intake(self, serving: Callable[[], int]) -> None:
        """The intake processes serving now, read at scrape (hl7.processes > 1)."""
        self.registry.register(IntakeCollector(serving))

    def watch_outbox(self, health: Callable[[datetime], OutboxHealth]) -> None:
        self.registry.register(OutboxCollector(health))


def _type_label(message_type: str) -> str:
    return message_type if message_type in _MESSAGE_TYPES else "other"


class IntakeCollector(Collector):
    """How many HL7 intake processes serve: below `hl7.processes` while one is being
    started again (an alert on it catches an intake process that keeps failing)."""

    def __init__(self, serving: Callable[[], int]) -> None:
        self._serving = serving

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("broker_hl7_intake_processes_serving", "HL7 intake processes serving now")
        gauge.add_metric([], self._serving())
        yield gauge


class OutboxCollector(Collector):
    """Outbox depth, oldest pending age and dead letters, queried at scrape time."""

    def __init__(self, health: Callable[[datetime], OutboxHealth]) -> None:
        self._health = health

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterable[Metric]:
        try:
            health = self._health(datetime.now())
        except SQLAlchemyError:
            log.warning("outbox figures unavailable: database unreachable")
            return
        yield GaugeMetricFamily("broker_outbox_depth", "Outbox messages waiting to be sent", value=health.depth)
        yield GaugeMetricFamily(
            "broker_outbox_oldest_pending_seconds",
            "Age of the oldest message waiting to be sent",
            value=health.oldest_pending_seconds,
        )
        yield GaugeMetricFamily("broker_outbox_dead", "Dead letters waiting for requeue", value=health.dead)
