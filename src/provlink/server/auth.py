"""API keys with ``read`` and ``write`` scopes, presented as ``Authorization: Bearer <key>``.

openlineage-python's ``auth: {type: api_key, apiKey: ...}`` sends exactly that header, so
its HTTP transports work against a protected server unchanged.

>>> ring = KeyRing.from_specs(["s3cret-key", "viewer-key:read"])
>>> ring.allows("Bearer viewer-key", "write"), ring.allows("Bearer s3cret-key", "write")
(False, True)
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provlink.config import key_spec
from provlink.errors import ConfigError


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The configured keys; empty means the API is open (and ``serve`` stays on loopback)."""

    keys: Mapping[str, frozenset[str]]

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> KeyRing:
        """Parse ``KEY`` (read and write) or ``KEY:read`` / ``KEY:write`` / ``KEY:read,write``."""
        keys: dict[str, frozenset[str]] = {}
        for spec in specs:
            key, wanted = key_spec(spec)
            if len(key) < 8:
                raise ConfigError("API keys must be at least 8 characters long")
            keys[key] = wanted
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def scopes(self, authorization: str | None) -> frozenset[str] | None:
        """Scopes of the presented bearer key; ``None`` when absent or unknown."""
        if not authorization:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        presented = presented.strip()
        found = None
        for key, scopes in self.keys.items():
            if hmac.compare_digest(key.encode(), presented.encode()):
                found = scopes
        return found

    def allows(self, authorization: str | None, scope: str) -> bool:
        scopes = self.scopes(authorization)
        return scopes is not None and scope in scopes
