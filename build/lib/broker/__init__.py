"""IHE Radiology Scheduled Workflow broker (Order Filler, Modality Worklist, PPS Manager)."""

__version__ = "0.1.0"
