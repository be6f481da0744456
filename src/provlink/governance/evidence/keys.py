"""The ledger key as the evidence bundle uses it: an Ed25519 key to sign, its public half
to verify.

Keys come in the ledger's own form — Go/C2SP note keys (``PRIVATE+KEY+name+id+base64``, a
``name+id+base64`` vkey), the form ``provlink keys generate`` writes — or as PEM. The
private key is ``--key``, else ``PROVLINK_LEDGER_KEY`` (text or path), else
``$PROVLINK_HOME/ledger.key``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from provlink.errors import ConfigError

_ED25519 = 0x01


def _text(value: str) -> str:
    if value.startswith("PRIVATE+KEY+") or value.startswith("-----BEGIN") or (
            value.count("+") >= 2 and not os.path.exists(value)):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"key {value!r}: cannot read it ({exc.strerror})") from exc


def _note_material(text: str) -> bytes:
    """The key bytes of ``name+hexid+base64(type || key)`` (base64 may itself hold ``+``)."""
    parts = text.strip().removeprefix("PRIVATE+KEY+").split("+", 2)
    if len(parts) != 3:
        raise ConfigError("the key is not a note key (name+id+material)")
    raw = base64.b64decode(parts[2], validate=True)
    if len(raw) != 33 or raw[0] not in (_ED25519, 0x04):
        raise ConfigError("the key is not an Ed25519 note key")
    return raw[1:]


def load_private_key(value: str | None, home: Path) -> Ed25519PrivateKey:
    value = value or os.environ.get("PROVLINK_LEDGER_KEY")
    if not value:
        default = home / "ledger.key"
        if not default.is_file():
            raise ConfigError("no ledger key to sign the bundle: make one with `provlink keys "
                              "generate`, or pass --key (a note key or a PEM Ed25519 key)")
        value = str(default)
    text = _text(value).strip()
    if text.startswith("PRIVATE+KEY+"):
        return Ed25519PrivateKey.from_private_bytes(_note_material(text))
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except ValueError as exc:
        raise ConfigError(f"the ledger key is neither a note key nor PEM ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the ledger key must be Ed25519")
    return key


def load_public_key(value: str) -> Ed25519PublicKey:
    """A vkey (``name+id+base64``) or PEM public key, as text or a path to a file."""
    text = _text(value).strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError("the public key must be Ed25519")
        return key
    try:
        return Ed25519PublicKey.from_public_bytes(_note_material(text))
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"cannot read the public key ({exc}); give a vkey as "
                          "`provlink keys generate` prints it, or a PEM file") from exc
