"""#17 Destinations apart: each outbox destination drains on its own. An Image Manager
that sits on its answer never delays the RIS: the RIS gets every status, in order per
order, while the Image Manager still holds its first message unanswered; once it
answers, it gets all of its own messages, in order. Real MLLP stand-ins, real store."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from broker.app import Broker
from broker.mapping.mpps import merge, performed_step_from
from support.brokers import make_config
from support.hl7peer import RisListener, ack_code, scheduled_order, segment, send
from support.mpps import as_dataset, n_create, n_set_final
from support.net import free_port

ORDERS = 5


@pytest.fixture
def slow_image_manager() -> Iterator[RisListener]:
    """Answers nothing until its gate opens (at the latest when the test ends)."""
    listener = RisListener(free_port(), gate=threading.Event()).start()
    yield listener
    assert listener.gate is not None
    listener.gate.set()
    listener.stop()


def _order_and_perform(broker: Broker, n: int) -> None:
    """The order (a Procedure Scheduled for the Image Manager), then IN PROGRESS and
    COMPLETED (a status each for the RIS)."""
    assert ack_code(send(broker.hl7.port, scheduled_order(f"{n:04d}", n))[0]) == "AA"
    rules, uid = broker.profile.mpps, f"1.2.3.{n}"
    create = as_dataset(n_create(f"SPS{n:04d}", f"ACC{n:04d}", f"RP{n:04d}", f"1.2.392.200036.9999.1.{n}"))
    broker.pps_manager.rad6_modality_pps_in_progress(performed_step_from(create, uid, rules))
    done = as_dataset(n_set_final())
    broker.pps_manager.rad7_modality_pps_update(uid, lambda stored: merge(stored, done, rules))


def _placers(messages: list[bytes]) -> list[str]:
    return [segment(message, "ORC")[2] for message in messages]


def test_a_slow_image_manager_never_delays_the_ris(
    database_url: str, ris: RisListener, slow_image_manager: RisListener
) -> None:
    """The Image Manager's timeout (60 s) is far beyond the RIS's wait: had the RIS to
    wait behind it, the RIS would not get its messages in time."""
    pacs = {"name": "pacs", "host": "127.0.0.1", "port": slow_image_manager.port, "timeout_seconds": 60}
    broker = Broker(make_config(ris.port, database_url=database_url, image_managers=[pacs]))
    broker.start()
    try:
        for n in range(1, ORDERS + 1):
            _order_and_perform(broker, n)
        slow_image_manager.wait_for(1)
        received = ris.wait_for(2 * ORDERS)
        held = list(slow_image_manager.received)  # still its first message, unanswered
        assert slow_image_manager.gate is not None
        slow_image_manager.gate.set()
        scheduled = slow_image_manager.wait_for(ORDERS)
    finally:
        broker.stop()
    assert _placers(held) == ["PO0001^RIS"]
    by_order: dict[str, list[str]] = {}
    for message in received:
        by_order.setdefault(segment(message, "ORC")[2], []).append(segment(message, "ORC")[5])
    assert by_order == {f"PO{n:04d}^RIS": ["IP", "CM"] for n in range(1, ORDERS + 1)}
    assert len(received) == 2 * ORDERS
    assert _placers(scheduled) == [f"PO{n:04d}^RIS" for n in range(1, ORDERS + 1)]
    assert [segment(message, "ORC")[1] for message in scheduled] == ["NW"] * ORDERS
