"""``provlink serve`` as a witness: an append-only table of checkpoints, consistency
checked against the last one held per log, 409 and an incident for an inconsistent one,
cosignatures on the consistent ones — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from provlink.governance.merkle import ListSource, consistency_proof, leaf_hash, root_hash
from provlink.governance.note import COSIGNATURE_V1, Checkpoint, Note, Signer
from provlink.server.app import create_app
from provlink.server.witness import Witness

LOG = Signer("example.com/witnessed-log", bytes(range(32)))
WITNESS = Signer("example.com/test-witness", bytes(range(32, 64)))
LEAVES = ListSource([leaf_hash(bytes([i])) for i in range(16)])


def note(size: int, *, root: bytes | None = None) -> str:
    cp = Checkpoint(origin=LOG.name, size=size, root=root or root_hash(LEAVES, size),
                    time_ms=1_700_000_000_000 + size)
    return cp.note(LOG)


def post(client: TestClient, size: int, proof_from: int | None = None,
         root: bytes | None = None) -> Any:
    proof = consistency_proof(LEAVES, proof_from, size) if proof_from is not None else []
    return client.post("/api/v1/provlink/checkpoints", json={
        "checkpoint": note(size, root=root), "proofFrom": proof_from,
        "proof": [base64.b64encode(h).decode() for h in proof]})


@pytest.fixture
def client(store: Any) -> TestClient:
    return TestClient(create_app(store, witness=Witness(signer=WITNESS)), base_url="http://127.0.0.1")


def test_consistent_checkpoints_are_cosigned_and_inconsistent_ones_refused(
        client: TestClient) -> None:
    first = post(client, 4)
    assert first.status_code == 200 and first.json()["reason"] == "first checkpoint of this log"
    cosigned = Note.parse(first.json()["cosigned"])
    assert cosigned.signed_by(LOG.verifier()) and cosigned.signed_by(
        WITNESS.verifier(COSIGNATURE_V1))
    assert post(client, 9, proof_from=4).status_code == 200
    assert post(client, 9).status_code == 200  # the same head again
    forked = post(client, 9, root=bytes(32))
    assert forked.status_code == 409 and "second root" in forked.json()["message"]
    bad_proof = post(client, 12, proof_from=9, root=root_hash(LEAVES, 11))
    assert bad_proof.status_code == 409
    assert post(client, 5).status_code == 202  # older than held: kept, checked by verify
    unproven = post(client, 12)
    assert unproven.status_code == 202 and unproven.json()["status"] == "unproven"
    held = client.get("/api/v1/provlink/checkpoints", params={"origin": LOG.name}).json()
    assert [(c["treeSize"], c["status"]) for c in held["checkpoints"]] == [
        (4, "consistent"), (9, "consistent"), (9, "consistent"), (9, "incident"),
        (12, "incident"), (5, "unproven"), (12, "unproven")]
    latest = client.get("/api/v1/provlink/checkpoints/latest", params={"origin": LOG.name})
    assert latest.json()["treeSize"] == 9
    about = client.get("/api/v1/provlink/witness").json()
    assert about["vkey"] == WITNESS.verifier(COSIGNATURE_V1).vkey


def test_checkpoints_in_ingested_events_are_witnessed(client: TestClient) -> None:
    event = {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
             "producer": "https://example.com/p",
             "run": {"runId": "01900000-0000-7000-8000-000000000001",
                     "facets": {"provlink_ledger": {
                 "_producer": "https://example.com/p", "_schemaURL": "https://example.com/s",
                 "origin": LOG.name, "treeSize": 3, "rootHash": root_hash(LEAVES, 3).hex(),
                 "checkpoint": note(3), "signed": True}}},
             "job": {"namespace": "n", "name": "j"},
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    held = client.get("/api/v1/provlink/checkpoints", params={"origin": LOG.name}).json()
    assert [(c["treeSize"], c["status"], c["source"].split()[0]) for c in held["checkpoints"]] \
        == [(3, "consistent", "event")]


def test_malformed_requests_say_what_is_wrong(client: TestClient) -> None:
    assert client.post("/api/v1/provlink/checkpoints", json={"x": 1}).status_code == 422
    bad = client.post("/api/v1/provlink/checkpoints", json={"checkpoint": "not a checkpoint"})
    assert bad.status_code == 422
    assert client.get("/api/v1/provlink/checkpoints").status_code == 400
    assert client.get("/api/v1/provlink/checkpoints/latest",
                      params={"origin": "nobody"}).status_code == 404
