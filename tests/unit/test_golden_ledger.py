"""Golden vectors of the ledger format, checked in so another implementation can check
ours (docs/ledger.md): entries, leaf hashes, roots, proofs, signed checkpoints and a
cosignature, all from fixed inputs and a fixed key seed (Ed25519 signing is deterministic).

Regenerate after a deliberate format change with ``PROVLINK_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from provlink.canonical import canonical_json, sha256_hex
from provlink.governance import entry as entries
from provlink.governance.merkle import (
    ListSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from provlink.governance.note import COSIGNATURE_V1, Checkpoint, Note, Signer, Verifier

GOLDEN = Path(__file__).parent / "golden_ledger" / "vectors.json"
LOG = Signer("example.com/provlink-golden", bytes(range(32)))
WITNESS = Signer("example.com/provlink-golden-witness", bytes(range(32, 64)))
T0 = 1767225600000  # 2026-01-01T00:00:00Z in ms


def _event(i: int) -> dict[str, Any]:
    return {"eventType": ("START", "COMPLETE")[i % 2], "eventTime": f"2026-01-01T00:00:0{i}Z",
            "producer": "https://example.com/golden", "run": {"runId": f"run-{i // 2}"},
            "job": {"namespace": "golden", "name": "train"}, "inputs": [], "outputs": [],
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


def build() -> dict[str, Any]:
    fields: list[tuple[str, dict[str, Any]]] = []
    for i in range(4):
        digest = sha256_hex(canonical_json(_event(i)))
        fields.append((entries.EVENT, entries.event_fields(_event(i), digest, i + 1)))
    fields.append((entries.DELIVERY, {"state": "sent", "events": [1, 2]}))
    fields.append((entries.DELIVERY, {"state": "dead", "events": [3],
                                      "error_sha256": sha256_hex(b"422 rejected")}))
    fields.append((entries.PRUNE, {"events": [1, 2]}))
    payload = {"model": "churn", "alias": "champion", "version": "3", "previous": "2"}
    fields.append(("mlflow.registry.alias_set",
                   entries.generic(sha256_hex(canonical_json(payload)), None)))
    out_entries, hashes = [], []
    for index, (kind, body) in enumerate(fields):
        data = entries.encode(seq=index, time_ms=T0 + index, kind=kind, fields=body)
        hashes.append(leaf_hash(data))
        out_entries.append({"leafIndex": index, "entry": data.decode(),
                            "leafHash": hashes[-1].hex()})
    source = ListSource(hashes)
    checkpoints = []
    for size in (1, 3, 4, 7, 8):
        cp = Checkpoint(origin=LOG.name, size=size, root=root_hash(source, size),
                        time_ms=T0 + 1000 * size)
        checkpoints.append({"treeSize": size, "rootHash": cp.root.hex(), "text": cp.text,
                            "signedNote": cp.note(LOG)})
    latest = Checkpoint(origin=LOG.name, size=8, root=root_hash(source, 8), time_ms=T0 + 8000)
    cosigned = Note.parse(latest.note(LOG)).render(WITNESS.cosign_line(latest.text, T0 // 1000))
    b64 = lambda hs: [base64.b64encode(h).decode() for h in hs]  # noqa: E731
    return {
        "description": "provlink ledger golden vectors; see docs/ledger.md",
        "logKey": {"name": LOG.name, "seedHex": LOG.seed.hex(), "vkey": LOG.verifier().vkey,
                   "privateKey": LOG.encoded()},
        "witnessKey": {"name": WITNESS.name, "seedHex": WITNESS.seed.hex(),
                       "vkey": WITNESS.verifier(COSIGNATURE_V1).vkey},
        "payloads": {"events": [_event(i) for i in range(4)], "aliasSet": payload},
        "entries": out_entries,
        "checkpoints": checkpoints,
        "inclusionProofs": [{"leafIndex": i, "treeSize": n,
                             "proof": b64(inclusion_proof(source, i, n))}
                            for i, n in ((0, 8), (5, 8), (2, 7), (6, 7), (0, 1))],
        "consistencyProofs": [{"oldSize": m, "newSize": n,
                               "proof": b64(consistency_proof(source, m, n))}
                              for m, n in ((1, 8), (3, 7), (4, 8), (7, 8), (3, 4))],
        "cosignedCheckpoint": {"timestamp": T0 // 1000, "note": cosigned},
    }


def test_golden_vectors_are_reproduced() -> None:
    expected = build()
    if os.environ.get("PROVLINK_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    assert json.loads(GOLDEN.read_text()) == expected


def test_golden_vectors_verify_from_the_file_alone() -> None:
    """What another implementation would do with the file: no provlink state needed."""
    golden = json.loads(GOLDEN.read_text())
    hashes = [bytes.fromhex(e["leafHash"]) for e in golden["entries"]]
    for e in golden["entries"]:
        assert leaf_hash(e["entry"].encode()) == bytes.fromhex(e["leafHash"])
        assert canonical_json(json.loads(e["entry"])).decode() == e["entry"]  # RFC 8785
    log = Verifier.parse(golden["logKey"]["vkey"])
    roots = {}
    for cp in golden["checkpoints"]:
        assert Note.parse(cp["signedNote"]).signed_by(log)
        roots[cp["treeSize"]] = bytes.fromhex(cp["rootHash"])
    for p in golden["inclusionProofs"]:
        proof = [base64.b64decode(h) for h in p["proof"]]
        n = p["treeSize"]
        assert verify_inclusion(p["leafIndex"], n, hashes[p["leafIndex"]], proof,
                                roots.get(n) or root_hash(ListSource(hashes), n))
    for p in golden["consistencyProofs"]:
        source = ListSource(hashes)
        assert verify_consistency(p["oldSize"], p["newSize"], root_hash(source, p["oldSize"]),
                                  root_hash(source, p["newSize"]),
                                  [base64.b64decode(h) for h in p["proof"]])
    cosigned = Note.parse(golden["cosignedCheckpoint"]["note"])
    assert cosigned.signed_by(Verifier.parse(golden["witnessKey"]["vkey"]))
    assert cosigned.signed_by(log)


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), min_size=1),
                       st.one_of(st.none(), st.booleans(), st.text(),
                                 st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                                 st.lists(st.one_of(st.text(), st.integers(0, 2**40)))),
                       max_size=6).filter(lambda d: not set(d) & entries.RESERVED))
@settings(max_examples=300, deadline=None)
def test_the_fast_entry_encoding_is_rfc_8785(fields: dict[str, Any]) -> None:
    data = entries.encode(seq=3, time_ms=T0, kind="k", fields=fields)
    assert data == canonical_json(json.loads(data))
    full = {**fields, "v": 1, "seq": 3, "time": T0, "kind": "k"}
    assert data == canonical_json(full)
