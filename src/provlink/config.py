"""One frozen configuration object, read once at construction.

Precedence is written in one place (:meth:`ProvlinkConfig.load`): explicit keyword
arguments > the host's settings (Airflow's ``[provlink]`` section) > the config file
(``PROVLINK_CONFIG`` or ``./provlink.yml``) > ``PROVLINK_*`` environment variables > defaults.
This is the only module that reads provlink's environment variables, including the
conventional ones a setting falls back to (``CONTAINER_IMAGE``; the orchestrators' state
directories, never captured as data).

No setting can switch capture off by accident: an unknown key or a bad value in the
environment, the file or the host's section is logged once per process as a warning and
ignored (the lower layer or the default applies). Explicit keyword arguments and
:meth:`ProvlinkConfig.from_dict` are code, so there an unknown key or bad value raises
:class:`ConfigError` naming it.

Adding a setting is one field below (typed, with its default); ``PROVLINK_<NAME>``, the file
key and the Airflow key follow from the field name.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provlink.errors import ConfigError

log = logging.getLogger(__name__)

# Matched (case-insensitively) against the key as written and in snake_case
# (``dbPassword`` -> ``db_password``); ``(?:^|_)`` bounds a word so that ``max_tokens``,
# ``tokenizer`` or ``passenger`` are not secrets. ``redact_key_patterns`` extend these unless
# ``redact_key_patterns_replace`` is set.
DEFAULT_SECRET_KEY_PATTERNS: tuple[str, ...] = (
    r"passw(?:or)?d",
    r"(?:^|_)(?:pass|pwd|pw)(?:_|$)",
    r"passphrase",
    r"secret",
    r"^tokens$|(?:^|_)token(?:_|$)",
    r"(?:access|refresh|auth|api|bearer|session|id|oauth|personal)_?token",
    r"api_?key",
    r"credential",
    r"(?:private|access|ssh|fernet|signing|encryption|master|account|shared_access)_?key",
    r"(?:^|_)jwt(?:_|$)",
    r"(?:^|_)bearer(?:_|$)",
    r"^auth$",
    r"authori[sz]ation",
    r"conn(?:ection)?_?(?:str|string|uri|url)",
    r"(?:^|_)dsn(?:_|$)",
    r"(?:database|db|broker|sqlalchemy|sql_alchemy|result_backend)_?(?:url|uri|conn)",
    r"session_?key",
    r"signature|(?:^|_)sig(?:_|$)",
    r"cookie",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvlinkConfig:
    """Every provlink setting. Build with :meth:`load`; never mutate."""

    home: Path = field(default_factory=lambda: Path.home() / ".provlink")
    namespace: str = "default"
    redact_key_patterns: tuple[str, ...] = ()
    redact_key_patterns_replace: bool = False
    redact_values: tuple[str, ...] = ()
    digest_max_bytes: int = 256 * 2**20
    capture_files: bool = True
    parameter_max_chars: int = 4096
    parameters_max_chars: int = 65536
    spool_sync: str = "normal"
    # the fleet spool (PostgreSQL, delivery/pg_spool.py); empty: SQLite under home
    spool_url: str = field(default="", repr=False)
    # connect + statement timeout (seconds) on the PostgreSQL spool: the most a down or
    # slow database can add to a task before the capture falls back to the local spool
    spool_timeout: float = 2.0
    sender_batch_size: int = 200
    sender_poll_interval: float = 0.2
    sender_backoff_initial: float = 0.5
    sender_backoff_max: float = 30.0
    delivery_max_attempts: int = 10
    delivery_concurrency: int = 8
    close_timeout: float = 5.0
    lineage_url: str = "http://127.0.0.1:5000"
    allowed_hosts: tuple[str, ...] = ()  # Host names `provlink serve` answers besides loopback
    env_vars: tuple[str, ...] = ()
    disabled: bool = False
    # ``provlink serve``'s bearer keys (``KEY`` or ``KEY:read``), comma-separated in the env.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    # Reported in the environment facet; falls back to $CONTAINER_IMAGE / $IMAGE_NAME.
    container_image: str | None = None
    # Path prefixes that are an orchestrator's own state (logs, metadata DB), never data;
    # by default from AIRFLOW_HOME, AIRFLOW__LOGGING__BASE_LOG_FOLDER,
    # AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (sqlite) and DAGSTER_HOME.
    orchestrator_state: tuple[str, ...] = ()
    # the ledger's signing key: a path to a key file, or the PRIVATE+KEY+... text itself;
    # default $PROVLINK_HOME/ledger.key when it exists (governance/keys.py)
    ledger_key: str = field(default="", repr=False)
    # `provlink serve`'s witness cosigning key (path or text); default home/witness.key
    witness_key: str = field(default="", repr=False)
    # the secret MLflow signs its model-registry webhooks with (`provlink serve` checks it)
    mlflow_webhook_secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.spool_sync not in ("normal", "full"):
            raise ConfigError(
                f"spool_sync must be 'normal' or 'full', got {self.spool_sync!r} "
                "(set PROVLINK_SPOOL_SYNC or spool_sync in provlink.yml)"
            )
        for name in ("digest_max_bytes", "parameter_max_chars", "parameters_max_chars",
                     "sender_batch_size", "delivery_max_attempts", "delivery_concurrency"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for pattern in self.redact_key_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"redact_key_patterns: {pattern!r} is not a regular "
                                  f"expression ({exc}); fix or remove it") from exc
        for name in ("sender_poll_interval", "sender_backoff_initial", "sender_backoff_max",
                     "close_timeout", "spool_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def secret_key_patterns(self) -> tuple[str, ...]:
        """The key patterns redaction uses: the defaults plus the user's, or only the
        user's with ``redact_key_patterns_replace``."""
        if self.redact_key_patterns_replace:
            return self.redact_key_patterns
        return DEFAULT_SECRET_KEY_PATTERNS + self.redact_key_patterns

    @property
    def spool_path(self) -> Path:
        return self.home / "spool.db"

    @property
    def store_path(self) -> Path:
        """The embedded backend's SQLite file (``provlink serve``, export, import)."""
        return self.home / "lineage.db"

    @classmethod
    def load(cls, host: Mapping[str, Any] | None = None, **explicit: Any) -> ProvlinkConfig:
        """Merge explicit > host > file > environment > defaults.

        ``host`` holds settings from the host's own configuration (Airflow's ``[provlink]``);
        like the file and the environment, an unknown key or bad value there is warned about
        once and ignored. ``explicit`` keys are validated strictly.
        """
        env = os.environ
        merged: dict[str, Any] = {}
        merged.update(_lenient(cls, _from_env(env)))
        merged.update(_lenient(cls, _from_file(_config_file(env)), source="the config file"))
        merged.update(_lenient(cls, dict(host or {}), source="the host's [provlink] settings"))
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


ENV_PREFIX = "PROVLINK_"
# Variables that are not settings but name the setting layers or are test/tool knobs.
_NOT_SETTINGS = frozenset({"PROVLINK_CONFIG"})


def _from_env(env: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """``{setting: (variable, value)}``: the fallback variables first, ``PROVLINK_*`` over them."""
    out: dict[str, tuple[str, Any]] = {}
    image = next((var for var in ("IMAGE_NAME", "CONTAINER_IMAGE") if env.get(var)), None)
    if image:
        out["container_image"] = (image, env[image])
    if state := _orchestrator_state(env):
        out["orchestrator_state"] = ("AIRFLOW_HOME/DAGSTER_HOME", state)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key not in _NOT_SETTINGS:
            out[key[len(ENV_PREFIX):].lower()] = (key, value)
    return out


def _orchestrator_state(env: Mapping[str, str]) -> tuple[str, ...]:
    airflow_home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow")
    paths = [env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or str(airflow_home / "logs"),
             str(airflow_home / "airflow.db")]
    sql = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if sql.startswith("sqlite:///"):
        paths.append(sql.removeprefix("sqlite:///").split("?")[0])
    if env.get("DAGSTER_HOME"):
        paths.append(env["DAGSTER_HOME"])
    return tuple(paths)


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("provlink: %s", message)


def _lenient(cls: type[ProvlinkConfig], values: Mapping[str, Any],
             source: str | None = None) -> dict[str, Any]:
    """The values that are known settings with valid values; a warning (once) for the rest.

    ``values`` maps setting -> value, or setting -> (variable, value) for the environment.
    """
    known = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for name, raw in values.items():
        where, value = raw if source is None else (f"{name!r} in {source}", raw)
        if name not in known:
            what = f"environment variable {where}" if source is None else f"setting {where}"
            _warn_once(f"ignoring {what}: not a provlink setting (known: "
                       f"{', '.join(sorted(known))})")
            continue
        try:
            coerced = _coerce(name, known[name].type, value)
            cls(**{name: coerced})  # validates this one value against the defaults
        except ConfigError as exc:
            shown = where if source is not None else f"environment variable {where}"
            _warn_once(f"ignoring {shown}: {exc}")
            continue
        out[name] = coerced
    return out


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Turn strings from env/file into the field's type; say which setting was wrong."""
    kind = str(annotation)
    if value is None and kind.endswith("| None"):
        return None
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
