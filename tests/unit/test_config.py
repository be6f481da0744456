"""Configuration: precedence explicit > file > env, validation names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from provlink.config import ProvlinkConfig
from provlink.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("PROVLINK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_precedence_explicit_over_file_over_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVLINK_NAMESPACE", "from-env")
    monkeypatch.setenv("PROVLINK_SENDER_BATCH_SIZE", "7")
    monkeypatch.setenv("PROVLINK_DIGEST_MAX_BYTES", "11")
    (tmp_path / "provlink.yml").write_text("namespace: from-file\nsender_batch_size: 9\n")
    config = ProvlinkConfig.load(namespace="explicit")
    assert config.namespace == "explicit"
    assert config.sender_batch_size == 9
    assert config.digest_max_bytes == 11


def test_env_values_are_coerced(monkeypatch) -> None:
    monkeypatch.setenv("PROVLINK_CAPTURE_FILES", "false")
    monkeypatch.setenv("PROVLINK_REDACT_VALUES", "a1b2c3, d4e5f6")
    monkeypatch.setenv("PROVLINK_HOME", "/tmp/somewhere")
    config = ProvlinkConfig.load()
    assert config.capture_files is False
    assert config.redact_values == ("a1b2c3", "d4e5f6")
    assert config.spool_path == Path("/tmp/somewhere/spool.db")


def test_unknown_env_variable_is_an_error_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("PROVLINK_NAMESPCE", "typo")
    with pytest.raises(ConfigError, match="PROVLINK_NAMESPCE"):
        ProvlinkConfig.load()


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "provlink.yml").write_text("namespaces: x\n")
    with pytest.raises(ConfigError, match="namespaces"):
        ProvlinkConfig.load()


def test_bad_value_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("PROVLINK_SENDER_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="sender_batch_size"):
        ProvlinkConfig.load()
    monkeypatch.delenv("PROVLINK_SENDER_BATCH_SIZE")
    with pytest.raises(ConfigError, match="spool_sync"):
        ProvlinkConfig.load(spool_sync="sometimes")
    with pytest.raises(ConfigError, match="sender_batch_size"):
        ProvlinkConfig.load(sender_batch_size=0)


def test_missing_config_file_is_an_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVLINK_CONFIG", str(tmp_path / "nope.yml"))
    with pytest.raises(ConfigError, match="PROVLINK_CONFIG"):
        ProvlinkConfig.load()


def test_config_is_frozen() -> None:
    config = ProvlinkConfig.load()
    with pytest.raises(AttributeError):
        config.namespace = "x"  # type: ignore[misc]
