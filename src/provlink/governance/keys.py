"""Where the ledger's keys come from, and writing a new one.

The signing key is ``ledger_key`` (``PROVLINK_LEDGER_KEY`` or ``provlink.yml``): a path to
a key file, or the ``PRIVATE+KEY+...`` text itself; by default ``$PROVLINK_HOME/ledger.key``
when that file exists. Without one, checkpoints are unsigned. ``provlink serve`` signs its
cosignatures with ``witness_key`` (default ``$PROVLINK_HOME/witness.key``, made on first
use). Public keys are C2SP vkeys, given as text or as a path to a file holding one.
"""

from __future__ import annotations

import os
from pathlib import Path

from provlink.config import ProvlinkConfig
from provlink.errors import ConfigError
from provlink.governance.note import COSIGNATURE_V1, NoteError, Signer, Verifier

LEDGER_KEY, LEDGER_PUB, WITNESS_KEY = "ledger.key", "ledger.pub", "witness.key"


def write_key(path: Path, signer: Signer, *, overwrite: bool = False) -> None:
    """Write a private key readable by its owner only (0600, created so from the start)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; pass --force to replace it (checkpoints "
                          "signed by the old key then need its public key to verify)") from exc
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(signer.encoded() + "\n")
    os.chmod(path, 0o600)


def _read(value: str, what: str) -> str:
    if value.startswith("PRIVATE+KEY+") or ("+" in value and not os.path.exists(value)):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"{what} {value!r}: cannot read it ({exc.strerror})") from exc


def load_signer(config: ProvlinkConfig) -> Signer | None:
    """The ledger's signing key, or None (unsigned checkpoints)."""
    if config.ledger_key:
        value = _read(config.ledger_key, "ledger_key")
    elif (config.home / LEDGER_KEY).is_file():
        value = (config.home / LEDGER_KEY).read_text(encoding="ascii")
    else:
        return None
    try:
        return Signer.parse(value)
    except NoteError as exc:
        raise ConfigError(f"ledger_key: {exc} (make one with `provlink keys generate`)") from exc


def load_verifier(value: str | None, config: ProvlinkConfig) -> Verifier | None:
    """A vkey given as text or path; else the public half of the configured key."""
    if value:
        return Verifier.parse(_read(value, "public key"))
    signer = load_signer(config)
    if signer is not None:
        return signer.verifier()
    pub = config.home / LEDGER_PUB
    return Verifier.parse(pub.read_text(encoding="ascii")) if pub.is_file() else None


def witness_signer(config: ProvlinkConfig, name: str = "provlink-witness") -> Signer:
    """The witness's cosigning key; made (0600) on first use when none is configured."""
    if config.witness_key:
        return Signer.parse(_read(config.witness_key, "witness_key"))
    path = config.home / WITNESS_KEY
    if not path.is_file():
        try:
            write_key(path, Signer.generate(f"{os.uname().nodename}/{name}"))
        except ConfigError:
            pass  # another server process made it first
    return Signer.parse(path.read_text(encoding="ascii"))


def witness_vkey(signer: Signer) -> str:
    return signer.verifier(COSIGNATURE_V1).vkey
