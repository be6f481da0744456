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

Adding a setting is one field below (typed, with its default and a one-line ``_doc``);
``PROVLINK_<NAME>``, the file key, the Airflow key and its row in the README's configuration
reference (:func:`reference_markdown`) follow from the field.
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


def _doc(text: str, shown: str | None = None) -> dict[str, str]:
    """A field's entry in the configuration reference (:func:`reference_markdown`): what it
    does, and its default as shown when ``repr`` of the value would not say it."""
    return {"doc": text, "shown": shown} if shown else {"doc": text}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvlinkConfig:
    """Every provlink setting. Build with :meth:`load`; never mutate."""

    home: Path = field(default_factory=lambda: Path.home() / ".provlink", metadata=_doc(
        "the spool, embedded store, keys and demo data; created 0700, its files 0600; "
        "refused if another user owns it", shown="`~/.provlink`"))
    namespace: str = field(default="default", metadata=_doc(
        "job namespace of plain Python capture points"))
    redact_key_patterns: tuple[str, ...] = field(default=(), metadata=_doc(
        "more regexes for secret-looking keys, added to the built-in ones "
        "(`DEFAULT_SECRET_KEY_PATTERNS`)"))
    redact_key_patterns_replace: bool = field(default=False, metadata=_doc(
        "`true`: `redact_key_patterns` replace the built-in patterns instead of adding to them"))
    redact_values: tuple[str, ...] = field(default=(), metadata=_doc(
        "known secret values, masked in every string outside identities"))
    digest_max_bytes: int = field(default=256 * 2**20, metadata=_doc(
        "files larger than this get a fingerprint (size, mtime, first and last MiB) instead "
        "of a SHA-256 digest", shown="`268435456` (256 MiB)"))
    capture_files: bool = field(default=True, metadata=_doc(
        "capture files read and written by the task's own code"))
    parameter_max_chars: int = field(default=4096, metadata=_doc(
        "each parameter is cut to this many characters, after redaction"))
    parameters_max_chars: int = field(default=65536, metadata=_doc(
        "bound on an Airflow task's parameters taken together"))
    spool_sync: str = field(default="normal", metadata=_doc(
        "`normal` survives a killed process; `full` (an fsync per append) also power loss"))
    spool_url: str = field(default="", repr=False, metadata=_doc(
        "`postgresql://…`: one spool and ledger for the whole fleet (run `provlink sender` "
        "beside it); empty: SQLite `spool.db` under `home`"))
    spool_timeout: float = field(default=2.0, metadata=_doc(
        "connect and statement timeout (s) on the PostgreSQL spool: the most a down database "
        "adds to a task before it spools locally"))
    sender_batch_size: int = field(default=200, metadata=_doc(
        "events the sender reads from the spool per batch (bounds its memory)"))
    sender_poll_interval: float = field(default=0.2, metadata=_doc(
        "seconds between the sender's looks at the spool"))
    sender_backoff_initial: float = field(default=0.5, metadata=_doc(
        "first backoff (s) after a failed delivery, doubled per failure"))
    sender_backoff_max: float = field(default=30.0, metadata=_doc(
        "longest backoff (s)"))
    delivery_max_attempts: int = field(default=10, metadata=_doc(
        "failures charged to one event (a 500, a read timeout) before it is dead-lettered; "
        "an unreachable backend is never counted"))
    delivery_concurrency: int = field(default=16, metadata=_doc(
        "parallel connections when posting one event per request (Marquez, which spends "
        "its time per event in its database); a run's events stay in order"))
    close_timeout: float = field(default=5.0, metadata=_doc(
        "seconds a process spends delivering at exit (none while the backend is known down)"))
    lineage_url: str = field(default="http://127.0.0.1:5000", metadata=_doc(
        "the backend's base URL: links in MLflow tags and Dagster metadata, and the "
        "governance commands' default `--url`"))
    allowed_hosts: tuple[str, ...] = field(default=(), metadata=_doc(
        "`Host` names `provlink serve` answers besides loopback (`.example.com`: subdomains)"))
    disabled: bool = field(default=False, metadata=_doc(
        "`true`: capture points run the code and capture nothing"))
    api_keys: tuple[str, ...] = field(default=(), repr=False, metadata=_doc(
        "`provlink serve`'s bearer keys, `KEY` or `KEY:read`; also masked in every event"))
    lineage_api_key: str = field(default="", repr=False, metadata=_doc(
        "the bearer key the governance commands present to `provlink serve`; also masked in "
        "every event",
        shown="the first of `api_keys` (for the witness, the first with write scope)"))
    container_image: str | None = field(default=None, metadata=_doc(
        "image reported in the environment facet", shown="`$IMAGE_NAME` or `$CONTAINER_IMAGE`"))
    orchestrator_state: tuple[str, ...] = field(default=(), metadata=_doc(
        "path prefixes that are an orchestrator's own files (logs, metadata DB), never "
        "captured as data",
        shown="`$AIRFLOW_HOME/logs` (or the log folder), `airflow.db`, a SQLite "
              "`sql_alchemy_conn`, `$DAGSTER_HOME`"))
    ledger_key: str = field(default="", repr=False, metadata=_doc(
        "the ledger's Ed25519 signing key: a key file's path or the key text; without one, "
        "checkpoints are unsigned",
        shown="`home/ledger.key` if it exists"))
    witness_key: str = field(default="", repr=False, metadata=_doc(
        "`provlink serve`'s witness cosigning key (path or text)",
        shown="`home/witness.key`, made on first use"))
    mlflow_webhook_secret: str = field(default="", repr=False, metadata=_doc(
        "the HMAC secret MLflow signs model-registry webhooks with; `provlink serve` checks it"))

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
    def secret_values(self) -> tuple[str, ...]:
        """Values masked in every event and log: ``redact_values``, the ``api_keys``' KEY
        parts (a ``KEY:read`` spec's ``KEY`` can appear without its suffix) and
        ``lineage_api_key``."""
        keys = (key_spec(spec)[0] for spec in self.api_keys)
        return (*self.redact_values, *keys, *filter(None, (self.lineage_api_key,)))

    def client_api_key(self, scope: str = "read") -> str | None:
        """The key a client of ``provlink serve`` presents: ``lineage_api_key``, else (on the
        server's own machine) the first of ``api_keys`` granting ``scope``, else the first."""
        if self.lineage_api_key:
            return self.lineage_api_key
        parsed = [key_spec(spec) for spec in self.api_keys]
        granting = [key for key, scopes in parsed if scope in scopes]
        keys = granting or [key for key, _ in parsed]
        return keys[0] if keys else None

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


KEY_SCOPES = frozenset({"read", "write"})


def key_spec(spec: str) -> tuple[str, frozenset[str]]:
    """``KEY`` (read and write) or ``KEY:read`` / ``KEY:write`` / ``KEY:read,write`` →
    (key, scopes); a suffix that names no scope is part of the key."""
    key, _, suffix = spec.rpartition(":")
    scopes = frozenset(s.strip() for s in suffix.split(",")) if key else frozenset()
    if not key or not scopes or not scopes <= KEY_SCOPES:
        return spec, KEY_SCOPES
    return key, scopes


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


def reference_markdown() -> str:
    """The configuration reference as a Markdown table, one row per setting, rendered from
    the fields themselves so the README's copy cannot drift from the code
    (``tests/unit/test_readme_config.py`` compares the two)."""
    rows = ["| setting | environment | default | what it does |", "|---|---|---|---|"]
    for f in dataclasses.fields(ProvlinkConfig):
        if "doc" not in f.metadata:
            raise ConfigError(f"setting {f.name!r} has no description: give its field "
                              "metadata=_doc(...) in provlink/config.py")
        shown = f.metadata.get("shown") or _shown_default(f)
        rows.append(f"| `{f.name}` | `{ENV_PREFIX}{f.name.upper()}` | {shown} "
                    f"| {f.metadata['doc']} |")
    return "\n".join(rows) + "\n"


def _shown_default(f: dataclasses.Field[Any]) -> str:
    value = f.default
    if value == () or value == "":
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"
