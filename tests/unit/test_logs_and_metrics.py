"""JSON log lines, and the metrics object's guards: bounded labels from wire input,
and a scrape that survives an unreachable database."""

from __future__ import annotations

import json
import logging
import random
import string
import sys
from datetime import datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from broker.logs import JsonFormatter
from broker.mapping.hl7_in import accepted_message_types
from broker.metrics import Metrics
from broker.store.db import build_engine
from broker.store.outbox import OutboxHealth
from broker.store.reads import reachable
from support.net import free_port
from support.web import metric


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.LogRecord("broker.hl7.intake", logging.WARNING, __file__, 1, message, args, info)


def test_json_line_per_record_with_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        line = JsonFormatter().format(_record("message %s not stored: 受付", "M1", exc=True))
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["level"], entry["logger"]) == ("WARNING", "broker.hl7.intake")
    assert entry["message"] == "message M1 not stored: 受付"
    assert "ValueError: boom" in entry["exception"]
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_hostile_message_types_share_one_label() -> None:
    metrics = Metrics()
    for junk in ("X" * 16, "ORM^O01^ORM_O01", "../../etc", "orm^o01"):
        metrics.hl7_received(junk)
    metrics.hl7_received("ORM^O01")
    text = generate_latest(metrics.registry).decode()
    assert metric(text, "broker_hl7_received_total", message_type="other") == 4
    assert metric(text, "broker_hl7_received_total", message_type="ORM^O01") == 1
    assert text.count("broker_hl7_received_total{") == 2


def test_random_message_types_add_no_series() -> None:
    """Issue #14 defect 7: 500 random well-formed MSH-9 values made 3,000 new series."""
    rng = random.Random(14)
    metrics = Metrics()
    for _ in range(500):
        junk = "".join(rng.choices(string.ascii_uppercase, k=3)) + "^" + "".join(rng.choices(string.digits, k=3))
        metrics.hl7_received(junk)
        metrics.hl7_answered(junk, "AR")
    labels = {
        sample.labels["message_type"]
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
        if "message_type" in sample.labels
    }
    assert labels == {"other"}
    assert labels <= {*accepted_message_types(), "other"}


def test_outbox_gauges_read_at_scrape_and_skipped_when_database_down() -> None:
    figures = [OutboxHealth(3, 42.5, 1)]

    def health(now: datetime) -> OutboxHealth:
        if not figures:
            raise OperationalError("SELECT", {}, Exception("down"))
        return figures.pop()

    metrics = Metrics()
    metrics.watch_outbox(health)
    text = generate_latest(metrics.registry).decode()
    assert (metric(text, "broker_outbox_depth"), metric(text, "broker_outbox_oldest_pending_seconds")) == (3, 42.5)
    assert metric(text, "broker_outbox_dead") == 1
    assert "broker_outbox_depth" not in generate_latest(metrics.registry).decode()  # and no error


def test_not_ready_when_the_database_does_not_answer() -> None:
    engine = build_engine(f"postgresql+psycopg://broker@127.0.0.1:{free_port()}/broker?connect_timeout=2")
    assert reachable(engine) is False
    engine.dispose()
