"""Redaction: the last step before anything leaves the process (spool, wire, logs).

Three rules, applied to every string anywhere in the event, not only parameters:
1. a value whose key looks secret (``password``, ``token``, ``api_key``...) is replaced,
   including ``{"key": "db_password", "value": ...}`` pairs (executionParameters,
   environmentVariables);
2. any occurrence of a known secret value (configured, found in secret-looking environment
   variables, or registered by an adapter, e.g. Airflow's masker) is replaced;
3. credentials inside URLs (``scheme://user:pass@host``) are replaced.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

MASK = "***"
_MIN_SECRET_LEN = 4
_STRUCTURAL_KEYS = frozenset({"_producer", "_schemaURL", "producer", "schemaURL", "eventType",
                              "eventTime", "runId", "namespace", "name", "key", "type"})
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_PAIR_KEYS = (("key", "value"), ("name", "value"))


class Redactor:
    """Replaces secrets in an event dict; thread-safe, cheap when nothing matches."""

    def __init__(self, key_patterns: Iterable[str], secret_values: Iterable[str] = (),
                 *, include_environment: bool = True) -> None:
        self._key_re = re.compile("|".join(f"(?:{p})" for p in key_patterns), re.IGNORECASE)
        self._secret_key = lru_cache(maxsize=4096)(self._looks_secret)
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        values = list(secret_values)
        if include_environment:
            values.extend(self.secrets_in_environment(os.environ))
        self.add_secrets(values)

    def _looks_secret(self, key: str) -> bool:
        return bool(self._key_re.search(key))

    def is_secret_key(self, key: str) -> bool:
        return self._secret_key(key)

    def secrets_in_environment(self, env: Mapping[str, str]) -> list[str]:
        """Values of environment variables whose names look secret."""
        return [v for k, v in env.items() if self.is_secret_key(k) and len(v) >= _MIN_SECRET_LEN]

    def add_secrets(self, values: Iterable[str]) -> None:
        """Register known secret values (e.g. from Airflow connections or the masker)."""
        with self._lock:
            before = len(self._secrets)
            self._secrets.update(
                v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN)
            if len(self._secrets) != before:
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        known = len(self._secrets)
        out = self._walk(event)
        if len(self._secrets) != known:
            # a value masked by its key was seen: scrub its copies elsewhere in the event too
            out = self._walk(out)
        return out

    def redact_text(self, text: str) -> str:
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        pattern = self._secret_re
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return text

    def _walk(self, node: Any) -> Any:
        if isinstance(node, str):
            if node[:1] in ("{", "[") and len(node) > 1:
                return self._walk_embedded_json(node)
            return self.redact_text(node)
        if isinstance(node, dict):
            return self._walk_dict(node)
        if isinstance(node, list):
            return [self._walk(v) for v in node]
        return node

    def _walk_dict(self, node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pair_secret = any(
            isinstance(node.get(k), str) and v in node and self.is_secret_key(node[k])
            for k, v in _PAIR_KEYS
        )
        for key, value in node.items():
            if pair_secret and key == "value":
                out[key] = self._mask_all(value)
            elif (key not in _STRUCTURAL_KEYS and self.is_secret_key(key)
                  and value not in (None, "")):
                out[key] = self._mask_all(value)
            else:
                out[key] = self._walk(value)
        return out

    def _walk_embedded_json(self, text: str) -> str:
        """Parameters serialised as JSON keep their structure: redact inside it."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.redact_text(text)
        return self.redact_text(json.dumps(self._walk(parsed), sort_keys=True))

    def _mask_all(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self._mask_all(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._mask_all(v) for v in node]
        if isinstance(node, str):
            self.add_secrets([node])
        return MASK
