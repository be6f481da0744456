"""The ledger's checkpoints leave the machine: a run's terminal event reaches a real
``provlink serve`` (its own process, over HTTP) carrying its checkpoint, the server
witnesses and cosigns it, and ``provlink verify --witness`` catches a local rewrite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import provlink
from provlink.cli.main import main
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.governance.note import COSIGNATURE_V1, Note, Signer, Verifier
from tests.unit.ledger_support import edit_event_and_entry, recompute_everything

LOG_KEY = Signer("example.com/provlink-witness-test", bytes(range(5, 37)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``provlink serve`` in its own process, with its own home (and so its witness key)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVLINK_")}
    env["PROVLINK_HOME"] = str(tmp_path / "server-home")
    process = subprocess.Popen(
        [sys.executable, "-m", "provlink.cli.main", "serve", "--port", str(port),
         "--db", f"sqlite:///{tmp_path / 'lineage.db'}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/v1/namespaces", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "provlink serve did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_terminal_event_checkpoint_is_witnessed_and_a_rewrite_is_caught(
        served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "client-home"
    monkeypatch.setenv("PROVLINK_HOME", str(home))
    monkeypatch.setenv("PROVLINK_LEDGER_KEY", LOG_KEY.encoded())
    monkeypatch.setenv("OPENLINEAGE_URL", served)
    runtime = Runtime(ProvlinkConfig.load())
    old = set_runtime(runtime)
    try:
        for name in ("features", "train"):
            with provlink.capture(name, capture_files=False):
                pass
        assert runtime.close(60)  # every event delivered to the server
    finally:
        set_runtime(old)
    spool = Spool(home / "spool.db")
    origin = spool.origin
    spool.close()

    witness = httpx.get(f"{served}/api/v1/provlink/witness").json()
    cosigner = Verifier.parse(witness["vkey"])
    assert cosigner.sig_type == COSIGNATURE_V1
    held = httpx.get(f"{served}/api/v1/provlink/checkpoints",
                     params={"origin": origin}).json()["checkpoints"]
    # each run's terminal event carried the checkpoint made right before it (the sender's
    # delivery entries interleave, so the sizes vary); the second was proved from the first
    assert [c["status"] for c in held] == ["consistent", "consistent"]
    assert 1 <= held[0]["treeSize"] < held[1]["treeSize"]
    assert held[1]["reason"] == "consistent"
    for row in held:
        note = Note.parse(row["cosigned"])
        assert note.signed_by(LOG_KEY.verifier()) and note.signed_by(cosigner)
    run = httpx.get(f"{served}/api/v1/jobs/runs/{_terminal_run(home)}/facets",
                    params={"type": "run"}).json()
    assert run["facets"]["provlink_ledger"]["treeSize"] == held[1]["treeSize"]

    vkey = LOG_KEY.verifier().vkey
    assert main(["verify", "--witness", served, "--public-key", vkey, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] and answer["witness"]["pushed"]["status"] == "consistent"

    # someone with write access rewrites the log, every hash recomputed, without the key
    monkeypatch.delenv("PROVLINK_LEDGER_KEY")
    first_event = 1
    edit_event_and_entry(home / "spool.db", first_event)
    recompute_everything(home / "spool.db", None)
    assert main(["verify"]) == 0  # nothing local can tell any more ...
    capsys.readouterr()
    assert main(["verify", "--witness", served]) == 1  # ... the witness can
    out = capsys.readouterr().out
    assert "inconsistent with the witness" in out and "FAILED" in out

    # and the witness refuses the rewritten log's checkpoint, recording an incident
    rewritten = Spool(home / "spool.db")
    from provlink.governance.log import Ledger

    forged = Ledger(rewritten).latest_checkpoint()
    rewritten.close()
    assert forged is not None
    refused = httpx.post(f"{served}/api/v1/provlink/checkpoints",
                         json={"checkpoint": forged.note, "proofFrom": None, "proof": []})
    assert refused.status_code == 409
    statuses = [c["status"] for c in httpx.get(f"{served}/api/v1/provlink/checkpoints",
                                               params={"origin": origin}).json()["checkpoints"]]
    assert statuses[-1] == "incident"


def _terminal_run(home: Path) -> str:
    spool = Spool(home / "spool.db")
    try:
        last = list(spool.entries())[-1]
        return json.loads(last.payload or "{}")["run"]["runId"]  # type: ignore[no-any-return]
    finally:
        spool.close()
