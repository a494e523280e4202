"""HL7 v2 adapter: MLLP framing, inbound intake with ACK after commit, outbound sender."""
