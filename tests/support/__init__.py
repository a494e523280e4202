"""Shared test helpers: free ports, HL7 samples, and the real peers (MLLP, DCMTK
findscu, dcmjs-dimse) wrapped as small functions."""
