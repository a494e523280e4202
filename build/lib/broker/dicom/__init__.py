"""DICOM adapter: the AE, the Modality Worklist SCP (RAD-5) and the MPPS SCP (RAD-6/7)."""
