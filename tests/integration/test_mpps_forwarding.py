"""PPS Manager forwarding: every N-CREATE / N-SET reaches the configured SCP through
the durable outbox, in order per MPPS, also when the SCP was down at the time."""

from __future__ import annotations

from pathlib import Path

from broker.app import Broker
from support.brokers import make_config
from support.dicompeer import mpps
from support.hl7peer import RisListener, sample, send
from support.mpps import n_create, n_set_final
from support.mpps_scp import MppsReceiver
from support.net import free_port


def test_forwarded_in_order_after_image_manager_outage(database_url: str, ris: RisListener, tmp_path: Path) -> None:
    port = free_port()
    target = {"name": "pacs-mpps", "ae_title": "IMAGEMGR", "host": "127.0.0.1", "port": port}
    broker = Broker(make_config(ris.port, database_url=database_url, mpps_forward=[target]))
    broker.start()
    try:
        send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        create = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
        uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=create)["affectedSopInstanceUid"])
        assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=n_set_final())["status"] == 0
        receiver = MppsReceiver(port).start()  # the Image Manager comes up only now
        try:
            received = receiver.wait_for(2)
        finally:
            receiver.stop()
    finally:
        broker.stop()
    assert received == [("create", uid, "IN PROGRESS"), ("set", uid, "COMPLETED")]
