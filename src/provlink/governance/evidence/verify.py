"""``provlink evidence verify``: check a bundle offline and name what fails.

In order: the DSSE signature (with the pinned ``--public-key``, else the key shipped in the
bundle, which proves integrity but not origin — the report says so); the statement's type
and predicate; the manifest's digest against the signed predicate; every file against the
manifest (none missing, none extra); the subjects against ``artifacts.json`` (and against
real files with ``artifacts_dir``); the subjects against the ``artifactManifest`` that the
lineage event registering the version recorded (so files swapped in the registry after
registration show up by name); every event against its ledger entry (payload digest, entry
hash) and the model version's ledger anchor.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provlink.governance.evidence import dsse, statement
from provlink.governance.evidence.bundle import (
    ENVELOPE,
    MANIFEST,
    artifact_digests,
    read_members,
    sha256,
)
from provlink.governance.trace import MODELS_PREFIX


@dataclass(slots=True)
class VerifyReport:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    pinned: bool = False
    subjects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    @property
    def failures(self) -> list[tuple[str, str]]:
        return [(what, detail) for what, ok, detail in self.checks if not ok]

    def add(self, what: str, ok: bool, detail: str) -> bool:
        self.checks.append((what, ok, detail))
        return ok

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "pinnedKey": self.pinned,
                "checks": [{"check": w, "ok": o, "detail": d} for w, o, d in self.checks]}


def verify_bundle(data: bytes, *, public_key: Ed25519PublicKey | None = None,
                  artifacts_dir: Path | None = None) -> VerifyReport:
    report = VerifyReport(pinned=public_key is not None)
    try:
        members = read_members(data)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        report.add("zip", False, f"not a readable zip ({exc})")
        return report
    predicate = _signature(report, members, public_key)
    if predicate is None:
        return report
    manifest = _manifest(report, members, predicate)
    if manifest is None:
        return report
    _subjects(report, members, artifacts_dir)
    _lineage_manifest(report, members, predicate)
    _ledger(report, members, public_key)
    return report


def _signature(report: VerifyReport, members: Mapping[str, bytes],
               pinned: Ed25519PublicKey | None) -> Mapping[str, Any] | None:
    if ENVELOPE not in members:
        report.add("signature", False, f"{ENVELOPE} is missing")
        return None
    key = pinned
    if key is None:
        try:
            loaded = load_pem_public_key(members.get("keys/ledger.pub", b""))
        except ValueError as exc:
            report.add("signature", False, f"keys/ledger.pub is not a public key ({exc})")
            return None
        if not isinstance(loaded, Ed25519PublicKey):
            report.add("signature", False, "keys/ledger.pub is not an Ed25519 key")
            return None
        key = loaded
    try:
        envelope = json.loads(members[ENVELOPE])
        payload = dsse.verify(envelope, key)
        body = json.loads(payload)
    except (ValueError, dsse.EnvelopeError) as exc:
        report.add("signature", False, f"{ENVELOPE}: {exc}")
        return None
    who = "the pinned public key" if pinned else (
        "the key shipped in the bundle (not pinned: pass --public-key to check who signed)")
    report.add("signature", True, f"DSSE signature verifies with {who} "
                                  f"({dsse.key_id(key)[:16]}…)")
    if body.get("_type") != statement.STATEMENT_TYPE or \
            body.get("predicateType") != statement.PREDICATE_TYPE:
        report.add("statement", False, f"statement type {body.get('_type')!r} / predicate "
                                       f"{body.get('predicateType')!r} is not provlink's")
        return None
    report.add("statement", True, f"in-toto Statement v1, {len(body.get('subject', []))} "
                                  "subjects")
    report.subjects = list(body.get("subject", []))
    return dict(body.get("predicate") or {})


def _manifest(report: VerifyReport, members: Mapping[str, bytes],
              predicate: Mapping[str, Any]) -> Mapping[str, str] | None:
    raw = members.get(MANIFEST)
    signed = ((predicate.get("bundle") or {}).get("manifest") or {}).get("sha256")
    if raw is None:
        report.add("manifest", False, f"{MANIFEST} is missing")
        return None
    if sha256(raw) != signed:
        report.add("manifest", False, f"{MANIFEST} was changed: its SHA-256 is not the "
                                      "one in the signed statement")
        return None
    files = dict(json.loads(raw).get("files") or {})
    bad = []
    for path, digest in sorted(files.items()):
        if path not in members:
            bad.append(f"{path} is missing")
        elif sha256(members[path]) != digest:
            bad.append(f"{path} was changed")
    extra = sorted(set(members) - set(files) - {MANIFEST, ENVELOPE})
    bad.extend(f"{path} is not in the manifest" for path in extra)
    if bad:
        report.add("manifest", False, "; ".join(bad))
        return None
    report.add("manifest", True, f"{len(files)} files match their signed digests")
    return files


def _subjects(report: VerifyReport, members: Mapping[str, bytes],
              artifacts_dir: Path | None) -> None:
    subjects = {s["name"]: s["digest"]["sha256"] for s in report.subjects}
    listed = json.loads(members.get("artifacts.json", b"{}"))
    if subjects != listed:
        report.add("subjects", False, "the statement's subjects differ from artifacts.json")
        return
    if artifacts_dir is None:
        report.add("subjects", True, f"{len(subjects)} model files listed with SHA-256 "
                                     "(pass --artifacts DIR to check the files themselves)")
        return
    actual = artifact_digests(artifacts_dir)
    wrong = sorted(p for p in set(subjects) | set(actual) if subjects.get(p) != actual.get(p))
    report.add("subjects", not wrong, "model files match the subjects" if not wrong else
               "model files differ from the subjects: " + ", ".join(wrong[:10]))


def _lineage_manifest(report: VerifyReport, members: Mapping[str, bytes],
                      predicate: Mapping[str, Any]) -> None:
    """The subjects are the files the registering event recorded, with the same SHA-256
    (a file recorded only as a fingerprint, being above the digest size bound, is named
    but cannot be compared)."""
    model = predicate.get("model") or {}
    dataset = f"{MODELS_PREFIX}{model.get('name')}/{model.get('version')}"
    recorded = registered_manifest(members, str(model.get("namespace")), dataset)
    if recorded is None:
        report.add("lineage manifest", False, f"no event in the bundle records the artifact "
                   f"manifest of {model.get('uri')} (its mlflow_model_version facet has no "
                   "artifactManifest)")
        return
    exact, fingerprinted = {}, []
    for item in recorded.get("files") or []:
        digest = item.get("digest") or {}
        if "sha256" in digest:
            exact[str(item.get("name"))] = digest["sha256"]
        else:
            fingerprinted.append(str(item.get("name")))
    subjects = {s["name"]: s["digest"].get("sha256") for s in report.subjects}
    problems = [f"{name} is not in the recorded manifest" for name in sorted(
        set(subjects) - set(exact) - set(fingerprinted))]
    problems += [f"{name} is recorded but not a subject" for name in sorted(
        set(exact) | set(fingerprinted)) if name not in subjects]
    problems += [f"{name} differs from the recorded SHA-256" for name in sorted(exact)
                 if name in subjects and subjects[name] != exact[name]]
    if problems:
        report.add("lineage manifest", False, "the subjects disagree with the manifest the "
                   "registering event recorded: " + "; ".join(problems[:10])
                   + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
        return
    note = (f"; {len(fingerprinted)} recorded as a fingerprint only, not compared: "
            + ", ".join(fingerprinted[:5]) if fingerprinted else "")
    report.add("lineage manifest", True, f"{len(exact)} subjects match the artifact manifest "
               f"the registering event recorded{note}")


def registered_manifest(members: Mapping[str, bytes], namespace: str,
                        dataset: str) -> Mapping[str, Any] | None:
    """The ``artifactManifest`` of the model version dataset in the last event of
    ``events.jsonl`` that carries one (the registering run's terminal event)."""
    found = None
    for line in members.get("events.jsonl", b"").decode().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the ledger check names a broken line
        for output in event.get("outputs") or []:
            if (output.get("namespace"), output.get("name")) != (namespace, dataset):
                continue
            facet = (output.get("facets") or {}).get("mlflow_model_version") or {}
            if isinstance(facet.get("artifactManifest"), dict):
                found = facet["artifactManifest"]
    return found


def _ledger(report: VerifyReport, members: Mapping[str, bytes],
            pinned: Ed25519PublicKey | None) -> None:
    """Each event is the payload its ledger entry names (RFC 8785 SHA-256), each entry a
    leaf of the checkpoint by its inclusion proof (RFC 9162), the checkpoint signed by the
    ledger key (and cosigned by the witness), the model anchor a leaf of its checkpoint."""
    from provlink.canonical import canonical_json, sha256_hex
    from provlink.governance.merkle import leaf_hash, verify_inclusion
    from provlink.governance.note import NoteError, parse_checkpoint

    material = json.loads(members.get("ledger/entries.json", b"{}"))
    lines = members.get("events.jsonl", b"").decode().splitlines()
    entries = material.get("entries") or []
    if not entries:
        report.add("ledger", False, "no event of the bundle is in a ledger (nothing proves "
                                    "the events were not altered)")
        return
    try:
        cp, note = parse_checkpoint(str(material.get("checkpoint") or ""))
    except NoteError as exc:
        report.add("ledger", False, f"the checkpoint is unreadable ({exc})")
        return
    problems: list[str] = []
    for item in entries:
        index, line = item.get("leaf"), item.get("line")
        if not isinstance(line, int) or not 0 <= line < len(lines):
            problems.append(f"leaf {index}: no event line {line}")
            continue
        entry = json.loads(item["entry"])
        if entry.get("payload_sha256") != sha256_hex(canonical_json(json.loads(lines[line]))):
            problems.append(f"leaf {index}: event line {line} is not what was ledgered")
        proof = [base64.b64decode(h) for h in item.get("proof") or []]
        if entry.get("seq") != index or not verify_inclusion(
                index, cp.size, leaf_hash(item["entry"].encode()), proof, cp.root):
            problems.append(f"leaf {index}: not in the checkpoint's tree (inclusion proof "
                            "fails)")
    signature = _note_signed(note, pinned, material.get("origin"))
    if signature is False:
        problems.append("the checkpoint is not signed by the ledger key")
    witness = _witness(note, material.get("witnessKey"))
    anchor = material.get("anchor")
    if anchor:
        problems.extend(_anchor_problems(anchor))
    if problems:
        report.add("ledger", False, "; ".join(problems[:10]))
        return
    unledgered = len(lines) - len(entries)
    signed = "signed by the ledger key" if signature else "signature not checked"
    report.add("ledger", True, f"{len(entries)} events proved in checkpoint {cp.origin} "
               f"size {cp.size} ({signed}; {witness})"
               + (f"; {unledgered} events not ledgered" if unledgered else "")
               + ("; model anchor proved" if anchor else "; no model anchor"))


def _note_signed(note: Any, key: Ed25519PublicKey | None, origin: Any) -> bool | None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from provlink.governance.note import ED25519, Verifier

    if note is None or key is None:
        return None if note is not None or key is None else False
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    results = [note.signed_by(Verifier(s.name, ED25519, raw)) for s in note.signatures]
    return True if any(r is True for r in results) else False


def _witness(note: Any, vkey: Any) -> str:
    from provlink.governance.note import NoteError, Verifier

    if note is None or not vkey:
        return "not witnessed"
    try:
        ok = note.signed_by(Verifier.parse(str(vkey)))
    except NoteError:
        ok = False
    return "cosigned by the witness" if ok else "witness cosignature does not verify"


def _anchor_problems(anchor: Mapping[str, Any]) -> list[str]:
    from provlink.governance.merkle import leaf_hash, verify_inclusion
    from provlink.governance.note import NoteError, parse_checkpoint

    if anchor.get("problem"):
        return [f"model anchor: {anchor['problem']}"]
    try:
        cp = parse_checkpoint(str(anchor["checkpoint"]))[0]
        digest = leaf_hash(str(anchor["entry"]).encode())
        proof = [base64.b64decode(h) for h in anchor.get("proof") or []]
    except (KeyError, ValueError, NoteError) as exc:
        return [f"model anchor unreadable ({exc})"]
    problems = []
    if anchor.get("leafHash") and digest.hex() != anchor["leafHash"]:
        problems.append("model anchor: the registry's leaf hash is not the bundled entry's")
    if not verify_inclusion(int(anchor["leaf"]), cp.size, digest, proof, cp.root):
        problems.append("model anchor: the registering event is not in the anchored checkpoint")
    return problems
