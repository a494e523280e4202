"""`broker simulate ...`: the simulators on the command line. Each prints what it
exchanged and exits 1 when something was refused or missing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.simulate.hl7_peer import Hl7Client, Hl7Receiver, field, load_message
from broker.simulate.image_manager import ImageManagerSimulator
from broker.simulate.modality import ModalitySimulator, Target, n_create_attributes, n_set_attributes, worklist_query
from broker.simulate.scenario import Peers, Runner, load_scenario

Command = Callable[..., argparse.ArgumentParser]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _ris(args: argparse.Namespace) -> int:
    """Send the files in order, print each answer, then the status messages that came back."""
    receiver = Hl7Receiver(args.listen_host, args.listen_port).start()
    client = Hl7Client(args.host, args.port, args.timeout)
    refused = 0
    try:
        for name in args.files:
            code, text = client.send(load_message(name))
            print(f"{name}: {code} {text}".rstrip())
            refused += code not in ("AA", "CA")
        statuses = receiver.wait_for(args.expect, args.timeout)
    finally:
        client.close()
        receiver.stop()
    for message in statuses:
        print("status: " + " ".join(f"{k}={field(message, k)}" for k in ("MSH-9", "ORC-1", "ORC-5", "OBR-18")))
    return 1 if refused or len(statuses) < args.expect else 0


def _modality(args: argparse.Namespace) -> int:
    """Query the worklist for a station; unless --worklist-only, perform the first item."""
    modality = ModalitySimulator(Target(args.host, args.port, args.called_ae, args.aet, args.timeout))
    status, items = modality.query(worklist_query(args.station))
    print(f"C-FIND: 0x{status:04X}, {len(items)} item(s)")
    for item in items:
        step = item.ScheduledProcedureStepSequence[0] if item.get("ScheduledProcedureStepSequence") else {}
        print(
            f"  {item.get('AccessionNumber', '')}  {step.get('ScheduledProcedureStepID', '')}  "
            f"{step.get('Modality', '')}  {step.get('ScheduledProcedureStepStartDate', '')}"
        )
    if status != 0 or not items:
        return 1
    if args.worklist_only:
        return 0
    created, uid = modality.create(n_create_attributes(items[:1], args.station or args.aet))
    print(f"N-CREATE IN PROGRESS {uid}: 0x{created:04X}")
    updated = modality.update(uid, n_set_attributes(args.outcome)) if created == 0 else -1
    print(f"N-SET {args.outcome}: 0x{updated:04X}" if updated >= 0 else "N-SET not sent")
    return 0 if created == updated == 0 else 1


def _image_manager(args: argparse.Namespace) -> int:
    """Receive for --duration seconds, then print what came and what was wrong with it."""
    simulator = ImageManagerSimulator(args.aet, args.host, args.hl7_port, args.dicom_port).start()
    print(f"Image Manager: HL7 on {simulator.hl7.port}, DICOM {args.aet} on {simulator.mpps.port}")
    try:
        time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    for message in simulator.hl7.received:
        print("HL7: " + " ".join(f"{k}={field(message, k)}" for k in ("MSH-9", "ORC-1", "ORC-5")))
    for mpps in simulator.mpps.received:
        print(f"MPPS: {mpps.operation} {mpps.uid} {mpps.status}")
    problems = simulator.problems()
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def _scenario(args: argparse.Namespace) -> int:
    scenario = load_scenario(Path(args.file))
    ris = Hl7Receiver(args.listen_host, args.ris_port).start()
    image_manager = ImageManagerSimulator(args.im_aet, args.listen_host, args.im_hl7_port, args.im_dicom_port).start()
    hl7_host, hl7_port = _address(args.hl7)
    dicom_host, dicom_port = _address(args.dicom)
    client = Hl7Client(hl7_host, hl7_port, args.timeout)
    modality = ModalitySimulator(Target(dicom_host, dicom_port, args.called_ae, args.aet, args.timeout))
    try:
        passed = Runner(Peers(client, modality, ris, image_manager)).run(scenario)
    finally:
        client.close()
        image_manager.stop()
        ris.stop()
    return 0 if passed else 1


def register(group: Any, command: Command) -> None:
    """Add the simulators to the `simulate` group (`command` is the CLI's helper)."""
    ris = command(group, "ris", "play the Order Placer / ADT: send HL7 files, take status back", _ris, config=False)
    ris.add_argument("files", nargs="+", help="HL7 files (paths, or names in the hl7/ catalog)")
    ris.add_argument("--host", default="127.0.0.1")
    ris.add_argument("--port", type=int, default=2575)
    ris.add_argument("--listen-host", default="127.0.0.1", help="where status messages (RAD-3) are received")
    ris.add_argument("--listen-port", type=int, default=2576)
    ris.add_argument("--expect", type=int, default=0, help="status messages to wait for")
    ris.add_argument("--timeout", type=float, default=10)

    modality = command(group, "modality", "play the Acquisition Modality: worklist, then MPPS", _modality, config=False)
    modality.add_argument("--host", default="127.0.0.1")
    modality.add_argument("--port", type=int, default=11112)
    modality.add_argument("--called-ae", default="BROKER")
    modality.add_argument("--aet", default="MODALITY1", help="calling AE title")
    modality.add_argument("--station", default="", help="Scheduled Station AE Title to query for")
    modality.add_argument("--worklist-only", action="store_true", help="query only, send no MPPS")
    modality.add_argument("--outcome", choices=["COMPLETED", "DISCONTINUED"], default="COMPLETED")
    modality.add_argument("--timeout", type=float, default=10)

    manager = command(
        group, "image-manager", "play the Image Manager: take RAD-4/13 and MPPS", _image_manager, config=False
    )
    manager.add_argument("--host", default="127.0.0.1")
    manager.add_argument("--hl7-port", type=int, default=2577)
    manager.add_argument("--dicom-port", type=int, default=11113)
    manager.add_argument("--aet", default="IMAGEMGR")
    manager.add_argument("--duration", type=float, default=60, help="seconds to listen")

    scenario = command(
        group, "scenario", "run an IHE SWF scenario file against an Order Filler", _scenario, config=False
    )
    scenario.add_argument("file", help="scenario YAML (see scenarios/)")
    scenario.add_argument("--hl7", default="127.0.0.1:2575", help="the Order Filler's MLLP address")
    scenario.add_argument("--dicom", default="127.0.0.1:11112", help="its worklist / MPPS SCP address")
    scenario.add_argument("--called-ae", default="BROKER")
    scenario.add_argument("--aet", default="MODALITY1", help="the modality's calling AE title")
    scenario.add_argument("--listen-host", default="127.0.0.1")
    scenario.add_argument("--ris-port", type=int, default=2576, help="where status messages (RAD-3) arrive")
    scenario.add_argument("--im-hl7-port", type=int, default=2577, help="where RAD-4/13 arrive")
    scenario.add_argument("--im-dicom-port", type=int, default=11113, help="where forwarded MPPS arrive")
    scenario.add_argument("--im-aet", default="IMAGEMGR")
    scenario.add_argument("--timeout", type=float, default=10)
