"""The MSH of a message, read from its raw bytes before anything else.

Reading the header on its own means even a message that cannot be decoded or parsed
still gets an ACK addressed to its sender and quoting its control ID.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.mapping.hl7_text import first_segment


@dataclass(frozen=True)
class MessageHeader:
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger_event: str = ""
    control_id: str = ""
    version: str = "2.5.1"
    charset: str = ""  # MSH-18, repetitions separated by `~`
    charset_handling: str = ""  # MSH-20

    @property
    def event(self) -> str:
        """MSH-9 as `TYPE^EVENT`, as the profile and the routes name messages."""
        return f"{self.message_type}^{self.trigger_event}"

    @property
    def sender(self) -> str:
        return f"{self.sending_application}|{self.sending_facility}"

    @classmethod
    def read(cls, raw: bytes) -> MessageHeader:
        """Best effort: missing fields stay empty; never raises."""
        line = first_segment(raw).decode("ascii", errors="replace")
        if not line.startswith("MSH") or len(line) < 8:
            return cls()
        sep, component = line[3], line[4]
        fields = line.split(sep)

        def get(n: int) -> str:  # MSH-n: MSH-1 is the separator itself
            return fields[n - 1].strip() if n - 1 < len(fields) else ""

        def first(n: int) -> str:
            return get(n).split(component)[0]

        msh9 = [*get(9).split(component), "", ""]
        return cls(
            sending_application=first(3),
            sending_facility=first(4),
            receiving_application=first(5),
            receiving_facility=first(6),
            message_type=msh9[0],
            trigger_event=msh9[1],
            control_id=get(10),
            version=first(12) or "2.5.1",
            charset=get(18).replace(line[5], "~"),
            charset_handling=get(20),
        )
