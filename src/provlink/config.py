"""One frozen configuration object, read once at construction.

Precedence is written in one place (:meth:`ProvlinkConfig.load`): explicit keyword
arguments > the config file (``PROVLINK_CONFIG`` or ``./provlink.yml``) > ``PROVLINK_*``
environment variables > defaults. Unknown keys are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provlink.errors import ConfigError

DEFAULT_SECRET_KEY_PATTERNS: tuple[str, ...] = (
    r"passw(or)?d",
    r"secret",
    r"token",
    r"api[_-]?key",
    r"apikey",
    r"credential",
    r"private[_-]?key",
    r"access[_-]?key",
    r"^auth$",
    r"authorization",
    r"conn(ection)?[_-]?(str|string|uri|url)",
    r"dsn",
    r"session[_-]?key",
    r"signature",
    r"cookie",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvlinkConfig:
    """Every provlink setting. Build with :meth:`load`; never mutate."""

    home: Path = field(default_factory=lambda: Path.home() / ".provlink")
    namespace: str = "default"
    redact_key_patterns: tuple[str, ...] = DEFAULT_SECRET_KEY_PATTERNS
    redact_values: tuple[str, ...] = ()
    digest_max_bytes: int = 256 * 2**20
    capture_files: bool = True
    parameter_max_chars: int = 4096
    parameters_max_chars: int = 65536
    spool_sync: str = "normal"
    sender_batch_size: int = 200
    sender_poll_interval: float = 0.2
    sender_backoff_initial: float = 0.5
    sender_backoff_max: float = 30.0
    close_timeout: float = 5.0
    lineage_url: str = "http://127.0.0.1:5000"
    env_vars: tuple[str, ...] = ()
    disabled: bool = False

    def __post_init__(self) -> None:
        if self.spool_sync not in ("normal", "full"):
            raise ConfigError(
                f"spool_sync must be 'normal' or 'full', got {self.spool_sync!r} "
                "(set PROVLINK_SPOOL_SYNC or spool_sync in provlink.yml)"
            )
        for name in ("digest_max_bytes", "parameter_max_chars", "parameters_max_chars",
                     "sender_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("sender_poll_interval", "sender_backoff_initial", "sender_backoff_max",
                     "close_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def spool_path(self) -> Path:
        return self.home / "spool.db"

    @classmethod
    def load(cls, **explicit: Any) -> ProvlinkConfig:
        """Merge explicit > file > environment > defaults, validating every key."""
        env = os.environ
        merged: dict[str, Any] = {}
        merged.update(_from_env(env))
        merged.update(_from_file(_config_file(env)))
        merged.update({k: v for k, v in explicit.items() if v is not None})
        return cls.from_dict(merged)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ProvlinkConfig:
        """Build from plain values (strings allowed), rejecting unknown keys."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown provlink setting(s): {', '.join(unknown)}; "
                f"known settings are: {', '.join(sorted(known))}"
            )
        kwargs = {name: _coerce(name, known[name].type, value) for name, value in values.items()}
        return cls(**kwargs)


def _config_file(env: Mapping[str, str]) -> Path | None:
    if path := env.get("PROVLINK_CONFIG"):
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"PROVLINK_CONFIG points to {path!r}, which is not a readable file")
        return p
    local = Path.cwd() / "provlink.yml"
    return local if local.is_file() else None


def _from_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml  # openlineage-python depends on PyYAML

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of provlink settings at the top level")
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(ProvlinkConfig)}
    for key, value in env.items():
        if not key.startswith("PROVLINK_") or key == "PROVLINK_CONFIG":
            continue
        name = key[len("PROVLINK_"):].lower()
        if name not in names:
            raise ConfigError(
                f"environment variable {key} is not a provlink setting; "
                f"known: {', '.join('PROVLINK_' + n.upper() for n in sorted(names))}"
            )
        out[name] = value
    return out


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Turn strings from env/file into the field's type; say which setting was wrong."""
    kind = str(annotation)
    try:
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: {exc} (expected {kind})") from exc
