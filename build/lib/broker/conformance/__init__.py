"""The documents a site reads before connecting: the DICOM Conformance Statement
(PS3.2 Annex N), the HL7 interface and the IHE Integration Statement, built from the
objects the broker's listeners are configured from, so they cannot disagree."""
