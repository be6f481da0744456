"""DSSE envelopes (secure-systems-lab/dsse v1.0) signed and checked with Ed25519.

Written out because it is twenty lines over ``cryptography``: the pre-authentication
encoding ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` signed
with the key, the envelope ``{payload, payloadType, signatures: [{keyid, sig}]}`` with
base64 payload and signature. The tests check every envelope we make with
``securesystemslib.dsse`` — an implementation we did not write.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provlink.errors import ProvlinkError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(ProvlinkError):
    """A DSSE envelope is malformed or its signature does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex (what securesystemslib's keyids look like)."""
    return hashlib.sha256(public_bytes(key)).hexdigest()


def sign(payload: bytes, key: Ed25519PrivateKey, *,
         payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    signature = key.sign(pae(payload_type, payload))
    return {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
            "signatures": [{"keyid": key_id(key.public_key()),
                            "sig": base64.b64encode(signature).decode()}]}


def verify(envelope: Mapping[str, Any], key: Ed25519PublicKey) -> bytes:
    """The payload when one signature verifies with ``key``; else :class:`EnvelopeError`."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = str(envelope["payloadType"])
        signatures = list(envelope["signatures"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"not a DSSE envelope ({exc})") from exc
    message = pae(payload_type, payload)
    for entry in signatures:
        try:
            key.verify(base64.b64decode(entry["sig"], validate=True), message)
        except (InvalidSignature, KeyError, TypeError, ValueError):
            continue
        return payload
    raise EnvelopeError(f"no signature verifies with key {key_id(key)[:16]}… "
                        f"({len(signatures)} signature(s) present)")


def dumps(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"
