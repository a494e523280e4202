"""Coverage-guided fuzzing with atheris (libFuzzer) of the three decoders in
bench/fuzz_targets.py: `python -m bench.fuzz TARGET [libFuzzer options]`, TARGET one
of hl7, cfind, mpps; e.g. `-max_total_time=1800` (`make soak` runs 30 minutes each).

The corpus starts from the HL7 catalog (hl7/) and from valid worklist and MPPS
datasets; findings are written to bench/results/fuzz-TARGET-* (libFuzzer's crash-*,
timeout-*, oom-* files), where `python -m bench.fuzz TARGET FILE` replays one.
Requires the `soak` extra (atheris).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _seeds(target: str) -> list[bytes]:
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    if target == "hl7":
        return [p.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r") for p in (ROOT / "hl7").rglob("*.hl7")]
    step = Dataset()
    step.ScheduledStationAETitle, step.Modality, step.ScheduledProcedureStepStartDate = "CT01", "CT", "20261123-"
    dataset = Dataset()
    dataset.SpecificCharacterSet = "ISO 2022 IR 87"
    dataset.PatientName, dataset.PatientID, dataset.AccessionNumber = "DOE^JOHN", "PAT001", "ACC1001"
    if target == "cfind":
        dataset.ScheduledProcedureStepSequence = [step]
    else:
        reference = Dataset()
        reference.StudyInstanceUID, reference.AccessionNumber = "1.2.392.200036.9999.1.1001", "ACC1001"
        reference.ScheduledProcedureStepID, reference.RequestedProcedureID = "SPS1001", "RP1001"
        dataset.ScheduledStepAttributesSequence = [reference]
        dataset.PerformedProcedureStepStatus, dataset.PerformedStationAETitle = "IN PROGRESS", "CT01"
        dataset.PerformedProcedureStepStartDate, dataset.Modality = "20261123", "CT"
    encoded = encode(dataset, True, True)
    assert encoded is not None
    return [encoded]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in ("hl7", "cfind", "mpps"):
        sys.exit(__doc__)
    target, options = argv[1], argv[2:]
    logging.disable(logging.CRITICAL)  # the decoders log refusals; findings are exceptions
    with atheris.instrument_imports(include=["broker", "hl7", "pydicom", "pynetdicom"]):
        from bench.fuzz_targets import TARGETS
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    for n, seed in enumerate(_seeds(target)):
        (corpus / f"seed-{n}").write_bytes(seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    replay = [o for o in options if not o.startswith("-")]
    flags = [o for o in options if o.startswith("-")]
    args = [argv[0], f"-artifact_prefix={RESULTS}/fuzz-{target}-", *flags, *(replay or [str(corpus)])]
    atheris.Setup(args, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
