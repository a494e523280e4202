"""Every IHE SWF scenario in scenarios/ passes against the broker itself, run by the
CLI (`broker simulate scenario`) with the broker's RIS, Image Manager and MPPS
forwarding pointed at the simulator's listeners; a broken expectation fails the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker.app import Broker
from broker.cli import main
from broker.store import tables as t
from support.brokers import make_config
from support.net import free_port

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Broker, list[str]]]:
    """A broker on SQLite and the CLI arguments that aim the simulators at it."""
    ris, im_hl7, im_dicom = free_port(), free_port(), free_port()
    config = make_config(
        ris,
        database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        image_managers=[{"name": "pacs", "host": "127.0.0.1", "port": im_hl7, "timeout_seconds": 5}],
        mpps_forward=[{"name": "pacs-mpps", "ae_title": "IMAGEMGR", "host": "127.0.0.1", "port": im_dicom}],
    )
    broker = Broker(config)
    broker.start()
    yield (
        broker,
        [
            f"--hl7=127.0.0.1:{broker.hl7.port}",
            f"--dicom=127.0.0.1:{broker.dicom.port}",
            f"--ris-port={ris}",
            f"--im-hl7-port={im_hl7}",
            f"--im-dicom-port={im_dicom}",
        ],
    )
    broker.stop()


@pytest.fixture
def target(site: tuple[Broker, list[str]]) -> list[str]:
    return site[1]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_passes_against_the_broker(
    scenario: Path, target: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", "scenario", str(scenario), *target])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out
    assert out.count("PASS") == out.count("\n[") + 1


def test_a_failed_expectation_fails_the_run(
    target: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\nsteps:\n"
        "  - send: {message: rad-2-placer-order/orm_o01_nw.hl7}\n"
        "  - worklist: {station: CT01, count: 1, fields: {PatientName: SOMEONE^ELSE}}\n"
    )
    assert main(["simulate", "scenario", str(wrong), *target]) == 1
    out = capsys.readouterr().out
    assert "FAIL: PatientName is 'DOE^JOHN^Q', expected 'SOMEONE^ELSE'" in out


def test_a_failed_step_ends_the_run_and_nothing_after_it_is_sent(
    site: tuple[Broker, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #14 defect 7: the run went on after a failed worklist step, printed PASS for
    an N-CREATE of no scheduled step, and left an unscheduled MPPS exception behind."""
    broker, target = site
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\nsteps:\n"
        "  - send: {message: rad-2-placer-order/orm_o01_nw.hl7}\n"
        "  - worklist: {station: CT01, count: 2}\n"
        "  - mpps_create: {}\n"
        "  - send: {message: rad-1-patient-registration/adt_a04.hl7}\n"
    )
    assert main(["simulate", "scenario", str(wrong), *target]) == 1
    out = capsys.readouterr().out
    assert out.split("FAIL: 1 worklist items, expected 2\n")[1] == "wrong: FAIL at step 2, 2 later step(s) not run\n"
    with broker.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.performed_steps)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(t.inbound_messages)).scalar_one() == 1
