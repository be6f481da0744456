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

>>> json_digest({"b": 1.0, "a": "é"}) == json_digest({"a": "é", "b": 1})
True
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

_SAFE = 2**53 - 1


class NotCanonicalError(ValueError):
    """The value has no RFC 8785 form: NaN or infinity, an integer no double holds exactly,
    text that is not Unicode, a non-string key or a type JSON does not have."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (sorted keys, no whitespace, ECMAScript number format)."""
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
