"""Redaction: the last step before anything leaves the process (spool, wire, logs).

Rules, over every string of the event (every facet, error messages and tracebacks):

1. **Identity is never rewritten by substitution.** Job and dataset namespaces and names,
   run ids, schema and column-lineage field names, dataset versions and parameter keys
   (:data:`IDENTITY_KEYS`) only lose credentials *by parsing*: a URL-shaped identity drops
   its userinfo and masks secret query/``;`` parameters (``postgres://etl:pw@db:5432`` ->
   ``postgres://db:5432``, the OpenLineage name other producers use), nothing else.
2. **By key**: a value whose key looks secret is masked whatever its type — dict keys,
   ``{"key"/"name": k, "value": v}`` pairs, ``["--password", "x"]`` lists; keys are compared
   in any casing and separator style (``dbPassword``, ``DB-PASSWORD``, ``X-Amz-Signature``).
   Strings holding JSON are parsed and walked (their text is kept when nothing changes).
3. **By shape** (:mod:`provlink.events.secret_shapes`): token formats, URL credentials,
   ``key=value``/``"key": "value"``/``--key value`` in text (Python repr, command lines,
   logs), ``Authorization: Bearer``, ``mysql -p``, SQL ``PASSWORD '...'``.
4. **By value** (:mod:`provlink.events.secret_values`): configured, environment, adapter and
   learnt values, masked in non-identity strings only.

Masking happens before any truncation: the event is built whole, redacted, then capped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from provlink.events.secret_shapes import (
    CONTAINER_AT_ACCOUNT_SCHEMES,
    HOST,
    MASK,
    PORT_THEN_PATH,
    ShapeMasker,
)
from provlink.events.secret_values import KnownSecrets, environment_candidates

__all__ = ["IDENTITY_KEYS", "MASK", "Redactor", "scrub_text", "strip_url_credentials"]

# Values under these keys name things; they are never substring-replaced.
IDENTITY_KEYS = frozenset({"namespace", "name", "runId", "field", "datasetVersion", "key",
                           "uri", "url", "repoUrl", "trackingUri"})
# Values under these keys are produced by provlink or the spec and need no look at all.
_VERBATIM_KEYS = frozenset({"_producer", "_schemaURL", "producer", "schemaURL", "eventType",
                            "eventTime", "nominalStartTime", "nominalEndTime"})
_PAIR_NAMES = ("key", "name")
# A key ending so names a place or a property of a secret, not the secret itself.
_POINTER_SUFFIXES = ("_path", "_file", "_filename", "_dir", "_location", "_name", "_length",
                     "_len", "_count", "_enabled", "_required", "_policy", "_type")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_TEXT_CACHE_MAX = 8192
_KEY_KINDS_MAX = 4096
_PLAIN, _SECRET, _IDENTITY, _VERBATIM = range(4)
_CACHEABLE_LEN = 512
_HOST = re.compile(HOST)


def normalise_key(key: str) -> str:
    """``dbPassword``/``DB-PASSWORD``/``X-Amz-Signature`` -> ``db_password``/``x_amz_signature``."""
    return _NON_ALNUM.sub("_", _CAMEL.sub("_", key)).strip("_").lower()


@lru_cache(maxsize=16)
def key_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """The secret-key patterns as one compiled expression, once per process: compiling the
    default set costs ≈ 10 ms, which a host that forks task processes pays once in
    :func:`provlink.capturing.preload.preload` (a compiled pattern is plain data after a
    fork)."""
    joined = "|".join(f"(?:{p})" for p in patterns if p)
    return re.compile(joined or r"(?!)", re.IGNORECASE)


class Redactor:
    """Masks secrets in an event dict; thread-safe, linear in the event, cheap when clean.

    >>> r = Redactor([r"passw(or)?d"], include_environment=False)
    >>> r({"job": {"namespace": "postgres://etl:pw@db:5432", "name": "t"}, "password": "x1"})
    {'job': {'namespace': 'postgres://db:5432', 'name': 't'}, 'password': '***'}
    """

    def __init__(self, key_patterns: Iterable[str], secret_values: Iterable[str] = (),
                 *, include_environment: bool = True) -> None:
        self._key_re = key_pattern(tuple(key_patterns))
        self._secret_key = lru_cache(maxsize=4096)(self._looks_secret)
        self.known = KnownSecrets(secret_values)
        self._shapes = ShapeMasker(self.is_secret_key, self._learn_one)
        self._text_cache: dict[str, str] = {}
        self._key_kinds: dict[Any, int] = {}
        self._cache_generation = self.known.generation
        if include_environment:
            self.add_secrets(self.secrets_in_environment(os.environ))

    # -- keys and values ---------------------------------------------------------------
    def _looks_secret(self, key: str) -> bool:
        norm = normalise_key(key)
        if norm.endswith(_POINTER_SUFFIXES):
            return False  # ssh_key_path, password_file, secret_name: where or what, not it
        return bool(self._key_re.search(norm) or self._key_re.search(key))

    def is_secret_key(self, key: str) -> bool:
        return self._secret_key(key)

    def secrets_in_environment(self, env: Mapping[str, str]) -> list[str]:
        """Values of environment variables whose names look secret (learnt if strong)."""
        return environment_candidates(env, self.is_secret_key)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Register secret values (Airflow's masker, environment): learnt if they look like
        secrets (:func:`provlink.events.secret_values.learnable`)."""
        self.known.learn(values)

    def _learn_one(self, value: str) -> None:
        self.known.learn((value,))

    # -- the step ----------------------------------------------------------------------
    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        before = self.known.values
        out = self._walk_dict(event)
        if self.known.values is not before:
            # a value masked by its key was learnt: scrub its copies elsewhere in the event
            # (strings walked before it was learnt), with a plain replace of the new values
            seen = set(before)
            fresh = [v for v in self.known.values if v not in seen]
            if fresh:
                out = _replace_values(out, fresh, None)
        return out

    def redact_value(self, value: Any) -> Any:
        """Redact a plain Python value (parameters before they are serialised)."""
        return self._walk(value, None)

    def redact_text(self, text: str) -> str:
        """Redact one free-text string (error text kept by the spool, log lines)."""
        if self.known.generation != self._cache_generation:
            self._text_cache.clear()
            self._cache_generation = self.known.generation
        cached = self._text_cache.get(text)
        if cached is not None:
            return cached
        out = self.known.mask(self._shapes(text))
        if len(text) <= _CACHEABLE_LEN:
            if len(self._text_cache) >= _TEXT_CACHE_MAX:
                self._text_cache.clear()
            self._text_cache[text] = out
        return out

    # -- the walk ----------------------------------------------------------------------
    def _walk(self, node: Any, key: str | None) -> Any:
        if isinstance(node, str):
            if key in IDENTITY_KEYS:
                return strip_url_credentials(node, self.is_secret_key)
            if key in _VERBATIM_KEYS or len(node) < 3:
                return node
            if node[:1] in ("{", "[") and len(node) > 1:
                return self._walk_embedded_json(node)
            return self.redact_text(node)
        if isinstance(node, dict):
            return self._walk_dict(node)
        if isinstance(node, (list, tuple)):
            return self._walk_list(node, key)
        return node

    def _walk_dict(self, node: Mapping[str, Any]) -> dict[str, Any]:
        # the hot loop of the step: one cached classification per key, strings inline
        pair_secret = "value" in node and self._is_pair_secret(node)
        kinds = self._key_kinds
        out: dict[str, Any] = {}
        for key, value in node.items():
            kind = kinds.get(key)
            if kind is None:
                kind = self._classify_key(key)
            if value is None or (type(value) is str and not value):
                out[key] = value
            elif kind == _SECRET or (pair_secret and key == "value"):
                out[key] = self._mask_all(value)
            elif type(value) is str:
                if kind == _IDENTITY:
                    out[key] = strip_url_credentials(value, self.is_secret_key)
                elif kind == _VERBATIM or len(value) < 3:
                    out[key] = value
                elif value[0] in "{[" and len(value) > 1:
                    out[key] = self._walk_embedded_json(value)
                else:
                    out[key] = self.redact_text(value)
            elif isinstance(value, dict):
                out[key] = self._walk_dict(value)
            elif isinstance(value, (list, tuple)):
                out[key] = self._walk_list(value, key)
            else:
                out[key] = value
        return out

    def _is_pair_secret(self, node: Mapping[str, Any]) -> bool:
        for name in _PAIR_NAMES:
            pair_key = node.get(name)
            if isinstance(pair_key, str) and self.is_secret_key(pair_key):
                return True
        return False

    def _classify_key(self, key: Any) -> int:
        if key in IDENTITY_KEYS:
            kind = _IDENTITY
        elif key in _VERBATIM_KEYS:
            kind = _VERBATIM
        elif isinstance(key, str) and self.is_secret_key(key):
            kind = _SECRET
        else:
            kind = _PLAIN
        if len(self._key_kinds) < _KEY_KINDS_MAX:
            self._key_kinds[key] = kind
        return kind

    def _walk_list(self, items: Iterable[Any], key: str | None) -> list[Any]:
        """Elements, with ``["--password", "x"]``: a flag whose name looks secret masks the
        element after it."""
        out: list[Any] = []
        mask_next = False
        for item in items:
            if mask_next and not isinstance(item, (dict, list, tuple)) and item not in (None, ""):
                out.append(self._mask_all(item))
                mask_next = False
                continue
            mask_next = (isinstance(item, str) and item.startswith("-") and len(item) < 64
                         and "=" not in item and " " not in item
                         and self.is_secret_key(item.lstrip("-")))
            out.append(self._walk(item, key))
        return out

    def _walk_embedded_json(self, text: str) -> str:
        """Parameters serialised as JSON keep their structure: redact inside it."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.redact_text(text)
        walked = self._walk(parsed, None)
        return text if walked == parsed else json.dumps(walked)

    def _mask_all(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self._mask_all(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [self._mask_all(v) for v in node]
        if node is None or node == "":
            return node
        if isinstance(node, str):
            self._learn_one(node)
        return MASK


def _replace_values(node: Any, values: list[str], key: str | None) -> Any:
    if isinstance(node, str):
        if key in IDENTITY_KEYS or key in _VERBATIM_KEYS:
            return node
        for value in values:
            if value in node:
                node = node.replace(value, MASK)
            escaped = json.dumps(value)[1:-1]  # its form inside JSON-encoded text
            if escaped != value and escaped in node:
                node = node.replace(escaped, MASK)
        return node
    if isinstance(node, dict):
        return {k: _replace_values(v, values, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_values(v, values, key) for v in node]
    return node


def strip_url_credentials(text: str, is_secret_key: Any = None) -> str:
    """A URL-shaped identity without its credentials, by parsing (no substitution).

    The userinfo goes when it holds a password or a token (a plain user such as ``git@``
    stays); query and ``;`` parameters whose key looks secret get ``***`` values.

    >>> strip_url_credentials("postgres://etl:p@ss/w0rd@db:5432/dw")
    'postgres://db:5432/dw'
    >>> strip_url_credentials("https://ghp_0123456789abcdefABCDEF0123456789abcd@github.com/o/r")
    'https://github.com/o/r'
    """
    if "://" not in text or not ("@" in text or "?" in text or ";" in text):
        return text
    scheme, _, rest = text.partition("://")
    if not scheme or not scheme[0].isalpha():
        return text
    rest = _without_userinfo(scheme, rest)
    if is_secret_key is not None and ("?" in rest or ";" in rest):
        rest = _without_secret_params(rest, is_secret_key)
    return f"{scheme}://{rest}"


def _without_userinfo(scheme: str, rest: str) -> str:
    head = re.split(r"[?#]", rest, maxsplit=1)[0]
    if "@" not in head:
        return rest
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:  # a malformed IPv6 host: fall through to the '@' rule below
        parts = None
    if parts is not None and "@" in parts.netloc and "@" not in parts.path:
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo or (_is_token(userinfo)
                               and not scheme.lower().startswith(CONTAINER_AT_ACCOUNT_SCHEMES)):
            return rest[len(userinfo) + 1:]
        return rest
    # A password holding '/' or '@' ('etl:p@ss/w0rd@db:5432') defeats urlsplit: the
    # userinfo then ends at the last '@' followed by a host[:port].
    for at in range(len(head) - 1, 0, -1):
        if head[at] != "@":
            continue
        user, colon, password = head[:at].partition(":")
        if (colon and "/" not in user and not PORT_THEN_PATH.match(password)
                and _HOST.fullmatch(head[at + 1:].split("/", 1)[0])):
            return rest[at + 1:]
    return rest


def _is_token(user: str) -> bool:
    return (len(user) >= 16 and any(c.isdigit() for c in user)
            and any(c.isalpha() for c in user))


def _without_secret_params(rest: str, is_secret_key: Any) -> str:
    """``?token=x&v=1`` -> ``?token=***&v=1``; also ``;password=x`` (JDBC/ODBC)."""
    out = []
    for part in re.split(r"([?&;#])", rest):
        name, eq, value = part.partition("=")
        if eq and value and value != MASK and name and is_secret_key(name):
            part = f"{name}={MASK}"
        out.append(part)
    return "".join(out)


_default_redactor: Redactor | None = None


def scrub_text(text: str) -> str:
    """Redact free text outside an event where no runtime's redactor is at hand (the
    spool's ``last_error`` written by ``provlink spool flush``): default key patterns,
    every shape, strong secret values of the environment."""
    global _default_redactor
    if _default_redactor is None:
        from provlink.config import DEFAULT_SECRET_KEY_PATTERNS

        _default_redactor = Redactor(DEFAULT_SECRET_KEY_PATTERNS)
    return _default_redactor.redact_text(text)
