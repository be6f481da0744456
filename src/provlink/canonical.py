"""One canonical JSON for every hash provlink computes over JSON: RFC 8785 (JCS).

The spool, the ledger and the backend's de-duplication all hash these bytes, so the same
event has the same digest wherever it is stored, and a backend event can be matched to its
ledger entry. The ``rfc8785`` package does the canonicalisation; only two things are here:
the hashing, and integers beyond +-(2**53 - 1). JCS reads every number as an IEEE double and
``rfc8785`` refuses such integers outright, yet JCS itself writes a large integral double
(``-6.920394208246542e16``) as digits (``-69203942082465420``) that Python parses back as an
``int``. So a large integer that is a double exactly (``2**60``), or whose digits are the
RFC 8785 form of a double, is taken as that double (the digest then survives a parse);
any other large integer (``2**53 + 1``) would change value and is refused.

Speed: ``rfc8785`` is pure Python and was the largest cost of a capture point. For the
values events are made of, ``json.dumps`` (C) with sorted keys, no whitespace and no ASCII
escaping writes the RFC 8785 bytes exactly: strings (JCS escapes the same characters),
safe integers, booleans, null, keys whose UTF-16 order is their code point order (no
character beyond U+FFFF), and doubles written the same way by both (non-integral, with
1e-4 <= |x| < 1e16; an integral double is written as the integer). Anything else takes
``rfc8785``; a property test pins the two paths to the same bytes.

>>> json_digest({"b": 1.0, "a": "é"}) == json_digest({"a": "é", "b": 1})
True
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

_SAFE = 2**53 - 1


class NotCanonicalError(ValueError):
    """The value has no RFC 8785 form: NaN or infinity, an integer no double holds exactly,
    text that is not Unicode, a non-string key or a type JSON does not have."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (sorted keys, no whitespace, ECMAScript number format)."""
    try:
        return json.dumps(_fast(value), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False).encode("utf-8")
    except _NotFast:
        pass
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:
        pass
    except (rfc8785.CanonicalizationError, UnicodeError) as error:
        raise NotCanonicalError(str(error)) from error
    try:
        return rfc8785.dumps(_as_doubles(value))
    except (rfc8785.CanonicalizationError, UnicodeError) as error:
        raise NotCanonicalError(str(error)) from error


class _NotFast(Exception):
    """The value needs ``rfc8785`` itself (see the module docstring)."""


def _fast(value: Any) -> Any:
    """``value`` as ``json.dumps`` writes in RFC 8785 form, or raise :class:`_NotFast`."""
    if isinstance(value, str):
        if value.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            return value
        raise _NotFast  # a lone surrogate: rfc8785 names the error
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        if -_SAFE <= value <= _SAFE:
            return value
        raise _NotFast
    if isinstance(value, float):
        if value.is_integer():
            if -_SAFE <= value <= _SAFE:
                return int(value)
            raise _NotFast
        if 1e-4 <= abs(value) < 1e16:  # NaN and infinity fail this too
            return value
        raise _NotFast
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not (
                    key.isascii() or all(c < "\ud800" or "\ue000" <= c <= "\uffff"
                                         for c in key)):
                raise _NotFast
            out[key] = _fast(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_fast(item) for item in value]
    raise _NotFast


def json_number(number: int) -> bool:
    """Whether JSON's number model (IEEE doubles, as RFC 8785 reads them) holds ``number``
    without changing it: it is safe, a double exactly, or the RFC 8785 digits of a double."""
    if -_SAFE <= number <= _SAFE:
        return True
    try:
        double = float(number)
    except OverflowError:
        return False
    return int(double) == number or rfc8785.dumps(double) == str(number).encode()


def _as_doubles(value: Any) -> Any:
    """A copy of ``value`` with its large integers as the doubles that hold them exactly."""
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_doubles(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -_SAFE <= value <= _SAFE:
        if not json_number(value):
            raise NotCanonicalError(
                f"{value} does not survive JSON's number model (send it as text)"
            )
        return float(value)
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_digest(value: Any) -> str:
    """Hex SHA-256 of the RFC 8785 form of ``value``: the one JSON hash used everywhere."""
    return sha256_hex(canonical_json(value))
