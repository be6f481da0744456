"""Talking to a witness (``provlink serve``): what it holds of our log, and handing it our
latest checkpoint with the consistency proof from what it holds.

:func:`check_against_witness` is what ``provlink verify --witness`` runs: every
checkpoint the witness kept for this log's origin must match the local log's root at that
size (a rewritten or truncated log cannot), its cosignatures must verify under the
witness's key, and its incidents are reported.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import requests

from provlink.errors import LineageAuthError, LineageQueryError
from provlink.governance.ledger import Problem
from provlink.governance.log import Ledger
from provlink.governance.note import NoteError, Verifier, parse_checkpoint
from provlink.governance.witness import INCIDENT


@dataclass(slots=True, kw_only=True)
class WitnessReport:
    url: str
    held: int = 0
    largest: int = 0
    cosigned: bool | None = None
    pushed: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "held": self.held, "largestTreeSize": self.largest,
                "cosignaturesVerified": self.cosigned, "pushed": self.pushed,
                "problems": [str(p) for p in self.problems]}


class WitnessClient:
    def __init__(self, url: str, *, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = f"{self.url}/api/v1/provlink/{path}"
        try:
            answer = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise LineageQueryError(f"cannot reach the witness at {self.url} ({exc}); start "
                                    "`provlink serve` or pass another --witness") from exc
        if answer.status_code in (401, 403):
            raise LineageAuthError(f"{method} {url}", answer.status_code,
                                   "read" if method == "GET" else "write")
        return answer

    def vkey(self) -> str:
        answer = self._call("GET", "witness")
        if answer.status_code != 200:
            raise LineageQueryError(f"{self.url} is not a provlink witness "
                                    f"({answer.status_code})")
        return str(answer.json()["vkey"])

    def held(self, origin: str) -> list[dict[str, Any]]:
        answer = self._call("GET", "checkpoints", params={"origin": origin})
        if answer.status_code != 200:
            raise LineageQueryError(f"witness {self.url}: {answer.status_code} {answer.text[:300]}")
        return list(answer.json()["checkpoints"])

    def submit(self, note: str, proof_from: int | None, proof: list[bytes]) -> dict[str, Any]:
        answer = self._call("POST", "checkpoints", json={
            "checkpoint": note, "proofFrom": proof_from,
            "proof": [base64.b64encode(h).decode() for h in proof]})
        if answer.status_code not in (200, 202, 409):
            raise LineageQueryError(f"witness {self.url}: {answer.status_code} {answer.text[:300]}")
        return dict(answer.json())


def push_latest(ledger: Ledger, client: WitnessClient) -> dict[str, Any] | None:
    """Give the witness our latest checkpoint, proved consistent with what it holds."""
    latest = ledger.latest_checkpoint()
    if latest is None:
        return None
    held = [r for r in client.held(ledger.origin) if r["status"] == "consistent"]
    base = held[-1]["treeSize"] if held else None
    proof = ledger.consistency(base, latest.checkpoint.size) if (
        base is not None and base <= latest.checkpoint.size) else []
    return client.submit(latest.note, base, proof)


def check_against_witness(ledger: Ledger, client: WitnessClient, *,
                          witness_key: Verifier | None = None, push: bool = True) -> WitnessReport:
    report = WitnessReport(url=client.url)
    rows = client.held(ledger.origin)
    size = ledger.size()
    report.held = len(rows)
    verifier = witness_key or Verifier.parse(client.vkey())
    cosigned_ok: bool | None = None
    for row in rows:
        n, root = int(row["treeSize"]), bytes.fromhex(row["rootHash"])
        report.largest = max(report.largest, n)
        if row["status"] == INCIDENT:
            report.problems.append(Problem(None, "inconsistent with the witness", (
                f"the witness recorded an incident for a checkpoint of {n} entries: "
                f"{row['reason']}")))
            continue
        if n > size:
            report.problems.append(Problem(size, "truncated", (
                f"the witness holds a checkpoint of {n} entries, the log has {size}")))
            continue
        if ledger.root(n) != root:
            report.problems.append(Problem(None, "inconsistent with the witness", (
                f"the log's root at {n} entries is not the one the witness holds "
                "(the log was rewritten)")))
        if row.get("cosigned"):
            try:
                note = parse_checkpoint(row["cosigned"])[1]
                good = bool(note and note.signed_by(verifier))
            except NoteError:
                good = False
            cosigned_ok = good if cosigned_ok is None else cosigned_ok and good
            if not good:
                report.problems.append(Problem(None, "bad signature", (
                    f"the witness's cosignature on {n} entries does not verify")))
    report.cosigned = cosigned_ok
    if push and not report.problems:
        report.pushed = push_latest(ledger, client)
        if report.pushed and report.pushed.get("status") == INCIDENT:
            report.problems.append(Problem(None, "inconsistent with the witness",
                                           str(report.pushed.get("reason"))))
    return report
