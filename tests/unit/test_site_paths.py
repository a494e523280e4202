"""Where an installed broker looks for things: paths in a configuration file are
relative to that file, and `broker send --today` moves a sample to today without
touching birth dates or the bytes of ISO 2022 text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from broker.config import load_config
from broker.simulate.hl7_peer import load_message, on_day


def test_relative_paths_in_a_configuration_are_relative_to_the_file(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "broker.yaml").write_text(
        yaml.safe_dump(
            {
                "profile": "profiles/site.yaml",
                "database": {"url": "sqlite:///var/broker.db"},
                "hl7": {"tls": {"cert": "tls/broker.crt", "key": "/etc/broker/broker.key", "ca": "tls/ca.crt"}},
                "image_managers": [{"name": "pacs", "host": "127.0.0.1", "port": 2577, "tls": {"ca": "tls/pacs.crt"}}],
            }
        )
    )
    config = load_config(site / "broker.yaml")
    assert config.profile == str(site / "profiles/site.yaml")
    assert config.database.url == f"sqlite:///{site / 'var/broker.db'}"
    assert config.hl7.tls is not None
    assert (config.hl7.tls.cert, config.hl7.tls.key, config.hl7.tls.ca) == (
        site / "tls/broker.crt",
        Path("/etc/broker/broker.key"),
        site / "tls/ca.crt",
    )
    assert config.image_managers[0].tls is not None
    assert config.image_managers[0].tls.ca == site / "tls/pacs.crt"


def test_named_profiles_and_environment_values_are_left_as_given(tmp_path: Path) -> None:
    (tmp_path / "broker.yaml").write_text("profile: jahis\n")
    config = load_config(tmp_path / "broker.yaml", {"BROKER__DATABASE__URL": "sqlite:///here.db"})
    assert config.profile == "jahis"
    assert config.database.url == "sqlite:///here.db"


def test_today_moves_the_scheduled_dates_and_keeps_the_birth_date() -> None:
    moved = on_day(load_message("rad-2-placer-order/orm_o01_nw.hl7"), date(2027, 2, 1))
    assert b"|20270201081000|" in moved  # MSH-7
    assert moved.count(b"^20270201100000^") == 2  # ORC-7 and OBR-27 start times
    assert b"|19700101|" in moved
    assert b"2026" not in moved


def test_today_leaves_iso_2022_text_alone() -> None:
    original = load_message("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7")
    tricky = original.replace(b"\rPV1|", b"\rNTE|1||\x1b$B20261123\x1b(B\rPV1|")  # kanji bytes that look like a date
    moved = on_day(tricky, date(2026, 11, 30))
    assert b"\x1b$B20261123\x1b(B" in moved
    assert moved.decode("iso2022_jp").count("20261130") == original.decode("iso2022_jp").count("20261123")
