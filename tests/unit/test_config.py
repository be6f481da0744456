"""Configuration: precedence explicit > host > file > env; stray settings warn once and are
ignored, bad explicit values raise naming the setting."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from provlink import config as config_module
from provlink.config import ProvlinkConfig
from provlink.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("PROVLINK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config_module, "_warned", set())


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


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and word in r.getMessage()]


def test_unknown_env_variable_warns_once_and_is_ignored(monkeypatch, caplog) -> None:
    monkeypatch.setenv("PROVLINK_NAMESPCE", "typo")
    monkeypatch.setenv("PROVLINK_NAMESPACE", "kept")
    with caplog.at_level(logging.WARNING, logger="provlink"):
        first = ProvlinkConfig.load()
        second = ProvlinkConfig.load()
    assert first.namespace == second.namespace == "kept"
    (message,) = _warnings(caplog, "PROVLINK_NAMESPCE")
    assert "not a provlink setting" in message and "namespace" in message


def test_api_keys_and_container_image_are_settings(monkeypatch) -> None:
    monkeypatch.setenv("PROVLINK_API_KEYS", "first-key-123,second-key:read")
    monkeypatch.setenv("IMAGE_NAME", "ghcr.io/acme/fallback:1")
    config = ProvlinkConfig.load()
    assert config.api_keys == ("first-key-123", "second-key:read")
    assert "first-key-123" not in repr(config)
    assert config.container_image == "ghcr.io/acme/fallback:1"
    monkeypatch.setenv("PROVLINK_CONTAINER_IMAGE", "ghcr.io/acme/train:2")
    assert ProvlinkConfig.load().container_image == "ghcr.io/acme/train:2"


def test_the_client_key_is_lineage_api_key_else_a_server_key_with_the_scope() -> None:
    """``provlink serve``'s own machine needs no second setting; a read key serves reads,
    a write-capable one is picked for the witness's POST when there is one."""
    keys = ("viewer-key-0123:read", "writer-key-0123", "other-key-0123:read,write")
    config = ProvlinkConfig.from_dict({"api_keys": keys})
    assert config.client_api_key("read") == "viewer-key-0123"
    assert config.client_api_key("write") == "writer-key-0123"
    only_read = ProvlinkConfig.from_dict({"api_keys": ("viewer-key-0123:read",)})
    assert only_read.client_api_key("write") == "viewer-key-0123"  # the server will say 403
    assert ProvlinkConfig.from_dict({}).client_api_key("read") is None
    chosen = ProvlinkConfig.from_dict({"api_keys": keys, "lineage_api_key": "client-key-9876"})
    assert chosen.client_api_key("read") == chosen.client_api_key("write") == "client-key-9876"
    assert "client-key-9876" not in repr(chosen)


def test_every_key_is_masked_by_its_key_part(tmp_path: Path) -> None:
    """A ``KEY:read`` spec's KEY is what appears on the wire (``Bearer KEY``), so the
    redactor is given the KEY, and ``lineage_api_key`` too, wherever it masks values
    (given in code here, so no secret-looking environment variable teaches it them)."""
    from provlink.delivery.runtime import Runtime

    config = ProvlinkConfig.from_dict({"home": tmp_path, "lineage_api_key": "client-key-9876",
                                       "api_keys": ("viewer-key-0123:read", "writer-key-0123")})
    assert set(config.secret_values) >= {"viewer-key-0123", "writer-key-0123",
                                         "client-key-9876"}
    redactor = Runtime(config, emitter=_NoEmitter()).redactor
    text = "sent Bearer viewer-key-0123, then writer-key-0123 and client-key-9876"
    masked = redactor.redact_text(text)
    assert not any(k in masked for k in ("viewer-key-0123", "writer-key-0123",
                                         "client-key-9876")), masked


class _NoEmitter:
    def emit(self, event: dict[str, object]) -> str | None:
        return None

    def close(self, timeout: float) -> bool:
        return True


def test_orchestrator_state_comes_from_their_variables(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dg"))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path}/m.db?x=1")
    monkeypatch.delenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", raising=False)
    state = ProvlinkConfig.load().orchestrator_state
    assert state == (str(tmp_path / "af" / "logs"), str(tmp_path / "af" / "airflow.db"),
                     f"{tmp_path}/m.db", str(tmp_path / "dg"))


def test_unknown_file_key_warns_and_is_ignored(tmp_path: Path, caplog) -> None:
    (tmp_path / "provlink.yml").write_text("namespaces: x\nnamespace: y\n")
    with caplog.at_level(logging.WARNING, logger="provlink"):
        assert ProvlinkConfig.load().namespace == "y"
    assert len(_warnings(caplog, "'namespaces' in the config file")) == 1


def test_host_layer_sits_between_explicit_and_file(tmp_path: Path, caplog) -> None:
    (tmp_path / "provlink.yml").write_text("namespace: file\nsender_batch_size: 3\n")
    with caplog.at_level(logging.WARNING, logger="provlink"):
        config = ProvlinkConfig.load(host={"namespace": "host", "capture_fiels": "true"})
    assert (config.namespace, config.sender_batch_size) == ("host", 3)
    assert ProvlinkConfig.load(host={"namespace": "host"}, namespace="code").namespace == "code"
    assert len(_warnings(caplog, "capture_fiels")) == 1


def test_bad_layered_value_warns_and_falls_back(monkeypatch, caplog) -> None:
    monkeypatch.setenv("PROVLINK_SENDER_BATCH_SIZE", "lots")
    monkeypatch.setenv("PROVLINK_SPOOL_SYNC", "sometimes")
    with caplog.at_level(logging.WARNING, logger="provlink"):
        config = ProvlinkConfig.load()
    assert (config.sender_batch_size, config.spool_sync) == (200, "normal")
    assert len(_warnings(caplog, "PROVLINK_SENDER_BATCH_SIZE")) == 1
    assert len(_warnings(caplog, "PROVLINK_SPOOL_SYNC")) == 1


def test_bad_explicit_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="unknown provlink setting"):
        ProvlinkConfig.load(namespaces="x")
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
