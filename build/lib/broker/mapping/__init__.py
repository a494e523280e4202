"""The profile engine: HL7 ↔ domain and domain → DICOM, driven by `profiles/*.yaml`."""
