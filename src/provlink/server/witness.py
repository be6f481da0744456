"""``provlink serve`` as a witness of provlink ledgers.

Every checkpoint received — in a terminal event's ``provlink_ledger`` facet on ingest, or
posted to ``POST /api/v1/provlink/checkpoints`` with a consistency proof — is appended to
``witness_checkpoints`` (never updated) with what :func:`provlink.governance.witness.decide`
made of it. Consistent ones are cosigned with the server's witness key (C2SP
cosignature/v1); inconsistent ones are refused with 409 and kept as incidents.

Routes (under ``/api/v1/``)::

    POST provlink/checkpoints          {"checkpoint": note, "proofFrom": n, "proof": [b64]}
    GET  provlink/checkpoints?origin=  every checkpoint held for a log, oldest first
    GET  provlink/checkpoints/latest?origin=   the newest consistent one, cosigned
    GET  provlink/witness              the witness's name and verifier key (vkey)
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provlink.config import ProvlinkConfig
from provlink.errors import ProvlinkError
from provlink.governance.note import NoteError, Signer
from provlink.governance.witness import CONSISTENT, INCIDENT, Decision, Held, witness
from provlink.server.ingest import now_iso
from provlink.server.routing import Call, HttpError, json_response, read_json
from provlink.server.tx import Tx

LEDGER_FACET = "provlink_ledger"


class TxBook:
    """:class:`~provlink.governance.witness.WitnessBook` over one store transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def latest(self, origin: str) -> Held | None:
        if self.tx.dialect == "postgresql":  # serialise deciders of one log
            self.tx.run("SELECT pg_advisory_xact_lock(hashtext(?))", (origin,))
        row = self.tx.row("SELECT tree_size, root_hash, cosigned FROM witness_checkpoints "
                          "WHERE origin = ? AND status = ? ORDER BY id DESC LIMIT 1",
                          (origin, CONSISTENT))
        return None if row is None else Held(size=int(row[0]), root=bytes.fromhex(row[1]),
                                             note=row[2] or "")

    def record(self, origin: str, decision: Decision, note: str, source: str) -> None:
        cp = decision.checkpoint
        self.tx.run("INSERT INTO witness_checkpoints (origin, tree_size, root_hash, status, "
                    "reason, note, cosigned, source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                    "?, ?)", (origin, cp.size, cp.root.hex(), decision.status, decision.reason,
                              note, decision.cosigned, source[:200], now_iso()))


class Witness:
    """The server's witness: its key (loaded, or made, on first use) and the decisions."""

    def __init__(self, config: ProvlinkConfig | None = None, signer: Signer | None = None) -> None:
        self._config = config
        self._signer = signer
        self._lock = threading.Lock()

    @property
    def signer(self) -> Signer:
        with self._lock:
            if self._signer is None:
                from provlink.governance.keys import witness_signer

                self._signer = witness_signer(self._config or ProvlinkConfig.load())
            return self._signer

    def receive(self, store: Any, note: str, proof: list[bytes], proof_from: int | None,
                source: str) -> Decision:
        signer = self.signer
        return store.write(lambda tx: witness(TxBook(tx), note, proof, proof_from, signer,  # type: ignore[no-any-return]
                                              source=source))

    def observe(self, store: Any, events: list[dict[str, Any]]) -> None:
        """Witness the checkpoints carried by ingested events (never fails the ingest)."""
        for event in events:
            facet = ((event.get("run") or {}).get("facets") or {}).get(LEDGER_FACET)
            if not isinstance(facet, dict) or not isinstance(facet.get("checkpoint"), str):
                continue
            try:
                proof = [base64.b64decode(p) for p in facet.get("consistencyProof") or []]
                frm = facet.get("proofFrom")
                self.receive(store, facet["checkpoint"], proof,
                             frm if isinstance(frm, int) else None,
                             f"event {(event.get('run') or {}).get('runId')}")
            except (NoteError, ValueError, TypeError, binascii.Error):
                continue


def routes(wit: Witness) -> list[tuple[str, str, Any]]:
    async def post_checkpoint(call: Call) -> Response:
        body = await read_json(call.request)
        if not isinstance(body, dict) or not isinstance(body.get("checkpoint"), str):
            raise HttpError(422, "body must be {\"checkpoint\": <signed note>, \"proofFrom\": "
                            "<size>, \"proof\": [<base64 hash>...]}", "checkpoint")
        try:
            proof = [base64.b64decode(p, validate=True) for p in body.get("proof") or []]
        except (binascii.Error, TypeError, ValueError):
            raise HttpError(422, "proof must be a list of base64 hashes", "proof") from None
        frm = body.get("proofFrom")
        try:
            decision = await run_in_threadpool(
                wit.receive, call.store, body["checkpoint"], proof,
                frm if isinstance(frm, int) else None, "POST /provlink/checkpoints")
        except NoteError as error:
            raise HttpError(422, str(error), "checkpoint") from None
        answer = _decision(decision)
        if decision.status == INCIDENT:
            return json_response({"code": 409, "message": decision.reason, **answer}, 409)
        return json_response(answer, 200 if decision.status == CONSISTENT else 202)

    async def list_checkpoints(call: Call) -> Response:
        origin = _origin(call)
        rows = await call.store_call("read", lambda tx: tx.rows(
            "SELECT id, tree_size, root_hash, status, reason, note, cosigned, source, "
            "received_at FROM witness_checkpoints WHERE origin = ? ORDER BY id", (origin,)))
        return json_response({"origin": origin, "checkpoints": [_row(r) for r in rows]})

    async def latest_checkpoint(call: Call) -> Response:
        origin = _origin(call)
        row = await call.store_call("read", lambda tx: tx.row(
            "SELECT id, tree_size, root_hash, status, reason, note, cosigned, source, "
            "received_at FROM witness_checkpoints WHERE origin = ? AND status = ? "
            "ORDER BY id DESC LIMIT 1", (origin, CONSISTENT)))
        if row is None:
            raise HttpError(404, f"no checkpoint of log {origin!r} is held")
        return json_response(_row(row))

    async def about(call: Call) -> Response:
        from provlink.governance.keys import witness_vkey

        try:
            signer = await run_in_threadpool(lambda: wit.signer)
        except ProvlinkError as error:
            raise HttpError(500, f"witness key: {error}") from None
        return json_response({"name": signer.name, "vkey": witness_vkey(signer)})

    return [("POST", "provlink/checkpoints", post_checkpoint),
            ("GET", "provlink/checkpoints", list_checkpoints),
            ("GET", "provlink/checkpoints/latest", latest_checkpoint),
            ("GET", "provlink/witness", about)]


def _origin(call: Call) -> str:
    origin = call.query("origin")
    if not origin:
        raise HttpError(400, "query parameter 'origin' is required")
    return origin


def _decision(decision: Decision) -> dict[str, Any]:
    cp = decision.checkpoint
    return {"status": decision.status, "reason": decision.reason, "origin": cp.origin,
            "treeSize": cp.size, "rootHash": cp.root.hex(), "cosigned": decision.cosigned}


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "treeSize", "rootHash", "status", "reason", "note", "cosigned", "source",
            "receivedAt")
    return dict(zip(keys, row, strict=True))
