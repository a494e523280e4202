"""The IHE ATNA audit trail: DICOM audit messages (PS3.15 A.5) kept in the outbox and
sent as RFC 5424 syslog (RFC 5426 UDP, RFC 5425 TLS)."""
