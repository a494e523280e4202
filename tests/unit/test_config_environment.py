"""Configuration from YAML plus BROKER__ environment variables; every invalid value is
reported with its key path, the value, the reason and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import ConfigError, load_config


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path


def test_nested_variables_override_the_file_and_keep_its_other_keys(tmp_path: Path) -> None:
    path = _file(tmp_path, "dicom:\n  ae_title: SITEAE\n  port: 104\n")
    config = load_config(path, {"BROKER__DICOM__PORT": "11113", "BROKER__LOG_LEVEL": "DEBUG", "HOME": "/root"})
    assert (config.dicom.port, config.dicom.ae_title, config.log_level) == (11113, "SITEAE", "DEBUG")


def test_names_under_a_mapping_keep_their_case_and_lists_come_whole() -> None:
    config = load_config(None, {
        "BROKER__DICOM__CALLERS__CT01__STATION_ONLY": "true",
        "BROKER__RIS": "{host: ris.example, port: 2576}",
        "BROKER__IMAGE_MANAGERS": "[{name: pacs, host: pacs.example, port: 2577}]",
    })  # fmt: skip
    assert config.dicom.callers["CT01"].station_only is True
    assert config.ris is not None and (config.ris.host, config.ris.port) == ("ris.example", 2576)
    assert [im.name for im in config.image_managers] == ["pacs"]


def test_a_bad_variable_is_named_with_key_value_and_reason() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, {"BROKER__DICOM__PORT": "70000"})
    assert "dicom.port = 70000: Input should be less than or equal to 65535 (from BROKER__DICOM__PORT)" in str(
        error.value
    )


def test_file_errors_name_list_items_and_missing_keys(tmp_path: Path) -> None:
    path = _file(tmp_path, "image_managers:\n  - {name: pacs, host: h, port: 0}\nris: {host: r}\nhl7: {prot: 1}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "image_managers[0].port = 0: Input should be greater than or equal to 1" in message
    assert "ris.port: required, not given" in message
    assert "hl7.prot = 1: Extra inputs are not permitted" in message
    assert "(from" not in message


def test_unknown_top_level_variable_is_refused_like_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"dicomm = 1: Extra inputs are not permitted \(from BROKER__DICOMM\)"):
        load_config(None, {"BROKER__DICOMM": "1"})
    with pytest.raises(ConfigError, match="BROKER__DICOM__: an empty key"):
        load_config(None, {"BROKER__DICOM__": "1"})
