"""Known secret values: masked wherever they appear in text that is not an identity.

Where they come from, and how much each source is trusted:

- ``redact_values`` the user configured: taken as written (4+ characters);
- values of secret-looking environment variables, values an adapter registers (Airflow's
  secrets masker) and values once masked by their key: **learnt**, and only when they look
  like secrets (:func:`learnable`): 8+ characters, at least two character classes, not a
  common word. ``PGPASSWORD=postgres`` or ``AIRFLOW_PASSWORD=airflow`` (the defaults of
  countless dev setups) are therefore not learnt: masking every ``postgres`` or ``airflow``
  in tracebacks, SQL and paths would make events unreadable and protects nothing a
  dictionary attack would not guess first. They are still masked where their key says so.

Learnt values are bounded (:data:`MAX_LEARNT` values of at most :data:`MAX_LEN` characters,
oldest forgotten first) so a long-lived process cannot grow its pattern without bound.
Matching is ``value in text`` per value (C substring search), longest first: linear in the
text, and a few microseconds per string for the handful of values a task process knows
(an Aho-Corasick automaton would be the next step if processes ever needed hundreds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

MASK = "***"
MIN_CONFIGURED_LEN = 4
MIN_LEARNT_LEN = 8
MAX_LEN = 1024
MAX_LEARNT = 64

# Values that are words, not secrets, whatever variable holds them.
COMMON_VALUES = frozenset({
    "password", "passw0rd", "postgres", "postgresql", "airflow", "dagster", "mlflow", "admin",
    "administrator", "changeme", "changeit", "default", "example", "localhost", "password1",
    "password123", "secret", "letmein", "qwerty123", "welcome1", "root", "guest", "test1234",
    "12345678", "123456789", "1234567890", "true", "false", "none", "null",
})

# Environment variables whose names look secret but whose values are not secrets.
_ENV_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
_ENV_NOT_SECRET_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_SOCK", "_FD", "_CMD", "_COMMAND")


def learnable(value: str) -> bool:
    """Whether a value may be learnt and masked everywhere: long enough, mixed enough."""
    if not (MIN_LEARNT_LEN <= len(value) <= MAX_LEN) or MASK in value:
        return False
    if value.lower() in COMMON_VALUES or value.strip() != value:
        return False
    classes = (any(c.islower() for c in value) + any(c.isupper() for c in value)
               + any(c.isdigit() for c in value) + any(not c.isalnum() for c in value))
    return classes >= 2 and len(set(value)) >= 4


def environment_candidates(env: Mapping[str, str],
                           is_secret_name: Callable[[str], bool]) -> list[str]:
    """Values of secret-looking variables that name a secret rather than a place.

    ``is_secret_name`` is the redactor's key predicate. Paths (``/...``, ``~...``) and
    variables named ``*_FILE``/``*_DIR``/``PWD`` point at secrets or places, so they are
    not secrets themselves (``PASSWORD_STORE_DIR``, ``PWD`` of the shell).
    """
    out = []
    for name, value in env.items():
        if name in _ENV_NOT_SECRET_NAMES or name.upper().endswith(_ENV_NOT_SECRET_SUFFIXES):
            continue
        if value[:1] in ("/", "~") or not is_secret_name(name):
            continue
        out.append(value)
    return out


class KnownSecrets:
    """The secret values this process knows; thread-safe; ``generation`` counts changes."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._configured = {v for v in configured
                            if isinstance(v, str) and MIN_CONFIGURED_LEN <= len(v) <= MAX_LEN}
        self._learnt: dict[str, None] = {}  # insertion-ordered: oldest first
        self._ordered: tuple[str, ...] = ()
        self.generation = 0
        self._rebuild()

    def __len__(self) -> int:
        return len(self._ordered)

    def learn(self, values: Iterable[str]) -> bool:
        """Add the values that pass :func:`learnable`; True when something was new."""
        fresh = [v for v in values if isinstance(v, str) and learnable(v)
                 and v not in self._learnt and v not in self._configured]
        if not fresh:
            return False
        with self._lock:
            for value in fresh:
                self._learnt[value] = None
            while len(self._learnt) > MAX_LEARNT:
                del self._learnt[next(iter(self._learnt))]
            self._rebuild()
        return True

    def _rebuild(self) -> None:
        self._ordered = tuple(sorted({*self._configured, *self._learnt}, key=len, reverse=True))
        self.generation += 1

    @property
    def values(self) -> tuple[str, ...]:
        """Every known value, longest first (a new tuple after each change)."""
        return self._ordered

    def __contains__(self, value: object) -> bool:
        return value in self._configured or value in self._learnt

    def mask(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text
