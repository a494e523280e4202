"""The one hook every security refusal goes through.

Listeners report each refused peer here — a failed TLS handshake, a refused DICOM
association or service, an HL7 sender not on the allow-list — so that one
implementation can turn them into IHE ATNA Security Alert audit messages (PS3.15
A.5.3.11). `LoggedAlerts` is the default: one WARNING per refusal, no patient data
(peers are named by address, AE title or MSH-3/MSH-4 only).
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

log = logging.getLogger(__name__)

#: The kinds of refusal, for routing and counting.
TLS_HANDSHAKE: Final = "tls-handshake"
DICOM_ASSOCIATION: Final = "dicom-association"
DICOM_SERVICE: Final = "dicom-service"
HL7_SENDER: Final = "hl7-sender"


class SecurityAlerts(Protocol):
    def refused(self, kind: str, peer: str, detail: str) -> None:
        """A peer was refused; `detail` says why, without patient data. Called from
        listener threads: implementations must be thread-safe and must not raise."""


class LoggedAlerts:
    def refused(self, kind: str, peer: str, detail: str) -> None:
        log.warning("security alert: %s refused for %s: %s", kind, peer, detail)
