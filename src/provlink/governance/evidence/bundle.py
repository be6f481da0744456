"""``provlink evidence``: one self-contained, signed bundle for a model version.

Layout of the zip (every file but the envelope and the manifest is listed in
``manifest.json``; the manifest's SHA-256 is in the signed predicate, so the signature
covers every byte)::

    statement.dsse.json      DSSE envelope of the in-toto Statement v1 (ledger key, Ed25519)
    manifest.json            {"algorithm": "sha256", "files": {path: hex digest}}
    summary.html             for a person, offline
    trace.json               the upstream graph as provlink traced it
    events.jsonl             every OpenLineage event of the upstream runs, as ledgered
    ledger/entries.json      those events' ledger entries with inclusion proofs to one
                             (witnessed) checkpoint, and the model version's anchor
    mlflow/model-version.json, mlflow/runs.json   the registry's records
    registry/promotions.json aliases now and every alias move to or from the version,
                             from the ledger's registry actions (also in the predicate)
    artifacts.json           the model version's files and SHA-256 (= the subjects)
    keys/ledger.pub          the signing key's public half (pin it with --public-key)
    schema/lineage-predicate.schema.json
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provlink.capturing.manifest import DEFAULT_EXCLUDED
from provlink.governance.coverage import all_events
from provlink.governance.evidence import dsse, statement
from provlink.governance.evidence.summary import render
from provlink.governance.registry_view import RegistryView
from provlink.governance.trace import LineageApi, Trace, trace

if TYPE_CHECKING:
    from provlink.config import ProvlinkConfig
    from provlink.governance.witness_client import WitnessClient

ENVELOPE, MANIFEST = "statement.dsse.json", "manifest.json"
Progress = Callable[[str, int], None]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_digests(directory: Path) -> dict[str, str]:
    """Relative POSIX path → SHA-256 of every file under ``directory`` (sorted), leaving out
    what the lineage manifest leaves out (``registered_model_meta``, which MLflow writes into
    the copy it downloads, ...), so the subjects are the files the registering event
    recorded."""
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()
                       and not DEFAULT_EXCLUDED & set(p.relative_to(directory).parts)):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        out[path.relative_to(directory).as_posix()] = digest.hexdigest()
    return out


def upstream_events(api: LineageApi, result: Trace) -> list[dict[str, Any]]:
    """Every event of the traced runs, read in the runs' time window, oldest first."""
    ids = {r.run_id for r in result.runs}
    starts = [r.started_at for r in result.runs if r.started_at]
    ends = [r.ended_at for r in result.runs if r.ended_at]
    bounded = len(starts) == len(ends) == len(result.runs) and bool(starts)
    window: dict[str, str] = {"after": min(starts), "before": max(ends)} if bounded else {}
    events = [e for e in all_events(api, after=window.get("after"), before=window.get("before"))
              if (e.get("run") or {}).get("runId") in ids]
    if window and {(e.get("run") or {}).get("runId") for e in events} != ids:
        events = [e for e in all_events(api) if (e.get("run") or {}).get("runId") in ids]
    return events


def build(api: LineageApi, *, namespace: str, name: str, version: str,
          registry: RegistryView, key: Ed25519PrivateKey, artifacts_dir: Path | None,
          ledger: Callable[[Trace, list[dict[str, Any]]], tuple[list[str], dict[str, Any]]],
          promotions: Mapping[str, Any] | None = None,
          progress: Progress | None = None) -> bytes:
    """The bundle as zip bytes. ``ledger`` returns the events' exact ledgered payloads (one
    JSON text per event) and the ledger material for ``ledger/entries.json``."""
    tell = progress or (lambda stage, n: None)
    record = registry.model_version(name, version)
    result = trace(api, namespace=namespace, name=name, version=version,
                   registry_tags=dict((record or {}).get("tags") or {}),
                   progress=lambda n: tell("tracing runs", n))
    events = upstream_events(api, result)
    tell("events", len(events))
    lines, ledger_material = ledger(result, events)
    mlflow_runs = [r for r in (registry.mlflow_run(str(m.get("runId")))
                               for run in result.runs for m in run.mlflow_runs) if r]
    aliases = dict(registry.aliases(name))
    promo = {"aliases": aliases, "history": [], **(promotions or {})}
    artifacts = artifact_digests(artifacts_dir) if artifacts_dir else {}
    created = datetime.now(UTC).isoformat()
    files: dict[str, bytes] = {
        "trace.json": _json(result.as_dict()),
        "events.jsonl": "".join(line.rstrip("\n") + "\n" for line in lines).encode(),
        "ledger/entries.json": _json(ledger_material),
        "mlflow/model-version.json": _json(record or {}),
        "mlflow/runs.json": _json(mlflow_runs),
        "registry/promotions.json": _json(promo),
        "artifacts.json": _json(artifacts),
        "keys/ledger.pub": key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "schema/lineage-predicate.schema.json": _json(statement.predicate_schema()),
    }
    files["summary.html"] = render(
        result, model_record=record, promotions=promo, events=len(lines),
        ledger=_ledger_summary(ledger_material), artifacts=artifacts,
        created_at=created).encode()
    manifest = _json({"algorithm": "sha256",
                      "files": {path: sha256(data) for path, data in sorted(files.items())}})
    predicate = statement.predicate(
        result, model_record=record,
        aliases=sorted(a for a, v in aliases.items() if v == version),
        manifest_sha256=sha256(manifest), created_at=created,
        ledger=_ledger_summary(ledger_material), promotions=promo["history"])
    body = json.dumps(statement.statement(artifacts=artifacts, predicate=predicate),
                      sort_keys=True, separators=(",", ":")).encode()
    files[MANIFEST] = manifest
    files[ENVELOPE] = dsse.dumps(dsse.sign(body, key))
    tell("signed", len(files))
    return _zip(files)


def _ledger_summary(material: Mapping[str, Any]) -> dict[str, Any]:
    return {k: material.get(k) for k in ("kind", "origin", "treeSize", "checkpoint",
                                         "witnessed", "modelAnchor", "ledgeredEvents",
                                         "unledgeredEvents")}


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=list).encode() + b"\n"


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[path])
    return buffer.getvalue()


def read_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()
                if not info.is_dir()}


def spool_ledger(config: ProvlinkConfig, *, signer: Any = None,
                 witness: WitnessClient | None = None
                 ) -> Callable[[Trace, list[dict[str, Any]]], tuple[list[str], dict[str, Any]]]:
    """Ledger material from the configured Merkle ledger (``provlink.governance.log``: the
    home's spool, or the fleet's with ``spool_url``): each upstream event's exact ledgered
    payload, its entry (the leaf's bytes), an inclusion proof to one checkpoint covering
    them all — the newest one ``witness`` cosigned when there is one, else
    the newest local one (made now, signed with ``signer``, when none covers them yet) —
    and the model version's registry anchor with its own inclusion proof."""

    def material(result: Trace, events: list[dict[str, Any]]) -> tuple[list[str],
                                                                         dict[str, Any]]:
        from provlink.delivery.spool_open import configured_spool, spool_exists
        from provlink.governance.log import Ledger

        ids = {r.run_id for r in result.runs}
        rows, lines = [], []
        found: set[tuple[str, str, str]] = set()
        ledger = None
        if spool_exists(config):
            spool = configured_spool(config)
            ledger = Ledger(spool)
            for entry in spool.entries():
                if entry.run_id not in ids or entry.payload is None or entry.leaf_index is None:
                    continue
                found.add(_event_key(json.loads(entry.payload)))
                lines.append(entry.payload)
                rows.append((entry.leaf_index, len(lines) - 1))
        unledgered = [e for e in events if _event_key(e) not in found]
        lines.extend(json.dumps(e, sort_keys=True) for e in unledgered)
        out: dict[str, Any] = {"kind": "provlink-merkle/v1", "ledgeredEvents": len(rows),
                               "unledgeredEvents": len(unledgered), "checkpoint": None,
                               "witnessed": None, "entries": [],
                               "modelAnchor": result.registry_tags.get(
                                   "provlink.ledger.leaf_hash")}
        if ledger is None or not rows:
            return lines, out
        needed = max(index for index, _ in rows) + 1
        note, witnessed, vkey = _covering_checkpoint(ledger, needed, signer, witness)
        from provlink.governance.note import parse_checkpoint

        size = parse_checkpoint(note)[0].size
        out.update(origin=ledger.origin, treeSize=size, checkpoint=note, witnessed=witnessed,
                   witnessKey=vkey)
        texts, proofs = _proofs(ledger, [index for index, _ in rows], size)
        for index, line in rows:
            out["entries"].append({"leaf": index, "line": line, "entry": texts[index],
                                   "proof": [base64.b64encode(h).decode()
                                             for h in proofs[index]]})
        out["anchor"] = _anchor(ledger, result.registry_tags)
        return lines, out

    return material


def _proofs(ledger: Any, indices: list[int],
            size: int) -> tuple[dict[int, str], dict[int, list[bytes]]]:
    """Entry texts and inclusion proofs of many leaves in one transaction (one per leaf
    would cost a transaction each: seconds for a thousand events)."""
    from provlink.governance.merkle import inclusion_proof

    wanted = set(indices)

    def work(tables: Any) -> tuple[dict[int, str], dict[int, list[bytes]]]:
        tables.fill_nodes()
        texts: dict[int, str] = {}
        start, stop = min(wanted), max(wanted) + 1
        while start < stop:
            batch = tables.leaves(start, 5000)
            if not batch:
                break
            texts.update({row[0]: row[2] for row in batch if row[0] in wanted})
            start = batch[-1][0] + 1
        return texts, {i: inclusion_proof(tables, i, size) for i in indices}

    result: tuple[dict[int, str], dict[int, list[bytes]]] = ledger.store.write(work, "read")
    return result


def _covering_checkpoint(ledger: Any, needed: int, signer: Any,
                         client: WitnessClient | None
                         ) -> tuple[str, bool | None, str | None]:
    """(note, witnessed?, witness vkey) of a checkpoint covering ``needed`` leaves."""
    from provlink.errors import LineageAuthError, LineageQueryError
    from provlink.governance.witness_client import push_latest

    latest = ledger.latest_checkpoint()
    if latest is None or latest.checkpoint.size < needed:
        latest = ledger.checkpoint(signer)
    if client is not None:
        try:
            def cosigned() -> list[dict[str, Any]]:
                return [r for r in client.held(ledger.origin) if r.get("status") ==
                        "consistent" and r.get("cosigned") and int(r["treeSize"]) >= needed]

            held = cosigned()
            if not held:
                push_latest(ledger, client)
                held = cosigned()
            if held:
                return str(held[-1]["cosigned"]), True, client.vkey()
        except LineageAuthError:
            raise
        except LineageQueryError:
            return latest.note, None, None
        return latest.note, False, None
    return latest.note, None, None


def _anchor(ledger: Any, tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The model version's registry anchor with an inclusion proof to its own checkpoint."""
    from provlink.governance.anchors import TAG_CHECKPOINT, TAG_LEAF, TAG_LEAF_HASH
    from provlink.governance.note import NoteError, parse_checkpoint

    if TAG_LEAF not in tags or TAG_CHECKPOINT not in tags:
        return None
    try:
        index, size = int(tags[TAG_LEAF]), parse_checkpoint(tags[TAG_CHECKPOINT])[0].size
    except (ValueError, NoteError):
        return {"leaf": tags.get(TAG_LEAF), "problem": "unreadable anchor tags"}
    leaf = ledger.leaf(index)
    if leaf is None or size > ledger.size():
        return {"leaf": index, "problem": "the anchored leaf is not in the local ledger"}
    return {"leaf": index, "leafHash": tags.get(TAG_LEAF_HASH), "entry": leaf[1],
            "checkpoint": tags[TAG_CHECKPOINT],
            "proof": [base64.b64encode(h).decode() for h in ledger.inclusion(index, size)]}


def _event_key(event: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str((event.get("run") or {}).get("runId")), str(event.get("eventType")),
            str(event.get("eventTime")))


def ledger_lines(members: Mapping[str, bytes]) -> Iterable[str]:
    return members.get("events.jsonl", b"").decode().splitlines()
