"""C2SP signed notes, checkpoints and cosignatures with Ed25519 keys (``cryptography``).

Formats (https://c2sp.org/signed-note, /tlog-checkpoint, /tlog-cosignature):

- a note is text ending in ``\\n``, a blank line, then lines ``— <name> base64(keyid || sig)``;
- ``keyid = SHA-256(name || 0x0A || type || pubkey)[:4]``, type 0x01 for a log's Ed25519
  signature over the text, 0x04 for a witness cosignature, whose signature is
  ``u64 timestamp || Ed25519("cosignature/v1\\ntime <t>\\n" || text)``;
- a verifier key is ``<name>+<hex keyid>+base64(type || pubkey)``; a private key is written
  as Go's ``golang.org/x/mod/sumdb/note`` does: ``PRIVATE+KEY+<name>+<hex keyid>+base64(0x01
  || seed)``, so keys move between this and Go tooling;
- a checkpoint's text is ``origin``, tree size, base64 root, then our one extension line
  ``time <unix milliseconds>``.

No maintained Python package implements signed notes (``sigstore`` parses Rekor's, without
key handling), so the ~150 lines are here.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provlink.errors import ProvlinkError

ED25519, COSIGNATURE_V1 = 0x01, 0x04
DASH = "\u2014"


class NoteError(ProvlinkError):
    """A key, note or checkpoint is malformed, or a signature does not verify."""


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key that checks one name's signatures of one type."""

    name: str
    sig_type: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public)

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([self.sig_type]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        name, hex_id, material = _three(vkey.strip(), "verifier key")
        raw = _b64(material, "verifier key")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("verifier key is not an Ed25519 (type 0x01 or 0x04) key")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise NoteError(f"verifier key {name}: key id {hex_id} does not match its key")
        return verifier

    def check(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 private key with its note name."""

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        self.name = name
        self.seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = _raw_public(self._key.public_key())

    @classmethod
    def generate(cls, name: str) -> Signer:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def parse(cls, text: str) -> Signer:
        body = text.strip()
        if not body.startswith("PRIVATE+KEY+"):
            raise NoteError("not a provlink/Go note private key (expected PRIVATE+KEY+...)")
        name, hex_id, material = _three(body.removeprefix("PRIVATE+KEY+"), "private key")
        raw = _b64(material, "private key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("private key is not an Ed25519 note key")
        signer = cls(name, raw[1:])
        if signer.verifier().key_id.hex() != hex_id.lower():
            raise NoteError(f"private key {name}: key id {hex_id} does not match its key")
        return signer

    def encoded(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id.hex()}+{material}"

    def verifier(self, sig_type: int = ED25519) -> Verifier:
        return Verifier(self.name, sig_type, self.public)

    def sign_line(self, text: str) -> str:
        """The note signature line of ``text`` (type 0x01)."""
        sig = self._key.sign(text.encode())
        return _line(self.name, self.verifier().key_id + sig)

    def cosign_line(self, text: str, timestamp: int) -> str:
        """A cosignature/v1 line over a checkpoint's text (type 0x04)."""
        sig = self._key.sign(cosigned_message(text, timestamp))
        return _line(self.name, self.verifier(COSIGNATURE_V1).key_id
                     + struct.pack(">Q", timestamp) + sig)


def cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def _line(name: str, blob: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(blob).decode()}\n"


def _three(text: str, what: str) -> tuple[str, str, str]:
    parts = text.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3 or len(parts[1]) != 8:
        raise NoteError(f"{what} must be <name>+<8 hex digits>+<base64 key>")
    _check_name(parts[0])
    return parts[0], parts[1], parts[2]


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise NoteError(f"{what}: bad base64") from exc


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: bytes
    blob: bytes  # after the key id


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    @classmethod
    def parse(cls, note: str) -> Note:
        text, sep, sigs = note.rpartition("\n\n")
        if not sep or not sigs.endswith("\n"):
            raise NoteError("a signed note is text, a blank line and signature lines")
        out = []
        for line in sigs[:-1].split("\n"):
            dash, _, rest = line.partition(" ")
            name, _, blob = rest.partition(" ")
            raw = _b64(blob, "note signature") if dash == DASH else b""
            if dash != DASH or len(raw) < 5:
                raise NoteError(f"malformed signature line {line!r}")
            out.append(Signature(name, raw[:4], raw[4:]))
        return cls(text + "\n", tuple(out))

    def render(self, extra: str = "") -> str:
        lines = "".join(_line(s.name, s.key_id + s.blob) for s in self.signatures)
        return f"{self.text}\n{lines}{extra}"

    def signed_by(self, verifier: Verifier) -> bool | None:
        """True/False for a signature of this key, None when it has none (ignored keys)."""
        found = [s for s in self.signatures
                 if s.name == verifier.name and s.key_id == verifier.key_id]
        if not found:
            return None
        for sig in found:
            if verifier.sig_type == COSIGNATURE_V1:
                if len(sig.blob) != 72:
                    return False
                timestamp = struct.unpack(">Q", sig.blob[:8])[0]
                ok = verifier.check(cosigned_message(self.text, timestamp), sig.blob[8:])
            else:
                ok = verifier.check(self.text.encode(), sig.blob)
            if not ok:
                return False
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A tree head: the log's origin, its size, its root hash and when it was made."""

    origin: str
    size: int
    root: bytes
    time_ms: int

    @property
    def text(self) -> str:
        return (f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
                f"time {self.time_ms}\n")

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise NoteError("a checkpoint has an origin, a tree size and a root hash")
        size_text, root = lines[1], _b64(lines[2], "checkpoint root")
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")) \
                or len(root) != 32:
            raise NoteError("checkpoint tree size or root hash is malformed")
        time_ms = 0
        for ext in lines[3:-1]:
            if ext.startswith("time ") and ext[5:].isdigit():
                time_ms = int(ext[5:])
        return cls(origin=lines[0], size=int(size_text), root=root, time_ms=time_ms)

    def note(self, signer: Signer | None) -> str:
        """The signed note; without a key, the bare text (an unsigned checkpoint)."""
        return self.text + ("\n" + signer.sign_line(self.text) if signer else "")


def parse_checkpoint(note: str) -> tuple[Checkpoint, Note | None]:
    """A checkpoint from a signed note, or from bare (unsigned) checkpoint text."""
    if "\n\n" in note:
        parsed = Note.parse(note)
        return Checkpoint.from_text(parsed.text), parsed
    return Checkpoint.from_text(note), None
