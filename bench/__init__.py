"""`make bench`: the broker measured next to DCMTK wlmscpfs, Orthanc and do-nothing floors.

Measurements, not tests: nothing here passes or fails. See bench/README.md.
"""
