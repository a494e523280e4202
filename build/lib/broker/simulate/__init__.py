"""Simulators for connectathon-style testing: the RIS (Order Placer / ADT), the
Acquisition Modality and the Image Manager, each speaking to any peer, and the runner
of the IHE Scheduled Workflow scenario files (`scenarios/`)."""
