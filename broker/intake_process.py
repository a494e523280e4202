"""`python -m broker.intake_process FD`: one HL7 intake process (hl7/processes.py),
started by the broker's process, which sends it the broker's configuration on standard
input and hands it connections over the Unix socket FD.

It builds the same services as the broker's process (the same store, profile and
Order Filler) and serves the connections as the broker's own listener would; it has
no listener, scheduler or DICOM side of its own. Ctrl-C and SIGTERM are for the
broker's process, which tells it to stop once its own listener has stopped accepting.
"""

from __future__ import annotations

import signal

from broker.app import Services, hl7_listener
from broker.config import BrokerConfig
from broker.hl7.processes import HandedConnections, RelayedMetrics, received_setup
from broker.logs import configure as configure_logging


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup, channel = received_setup()
    config = BrokerConfig.model_validate_json(setup)
    configure_logging(config.log_level, config.log_format)
    metrics = RelayedMetrics()
    services = Services(config, metrics=metrics)
    services.serve()
    handed = HandedConnections(channel, metrics)
    listener = hl7_listener(config, services, closed=handed.closed)
    try:
        handed.serve(listener.admit)
    finally:
        listener.stop()  # running work finishes and is answered
        handed.last_report()
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
