"""The governance commands against a ``provlink serve`` that has API keys: they present
``lineage_api_key`` (``PROVLINK_LINEAGE_API_KEY``), else a key of ``api_keys`` on the
server's own machine; a refused key is exit 2 with a message naming the setting, and the
key never appears in what they print."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provlink.cli.main import main
from provlink.delivery.spool import Spool
from provlink.server.store import open_store
from tests.server.server_events import facet, pipeline, run_event
from tests.server.support import LiveServer
from tests.unit.ledger_support import KEY, build_log

READER, WRITER = "reader-key-0a1b2c3d", "writer-key-4e5f6a7b"
MODEL_NS = "http://127.0.0.1:5001"  # pipeline()'s model namespace
TRACE = ["trace", "models:/churn/3", "--namespace", MODEL_NS, "--json"]


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A keyed server over the pipeline's events; no PROVLINK_* setting leaks in."""
    import os

    for name in [n for n in os.environ if n.startswith(("PROVLINK_", "OPENLINEAGE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'lineage.db'}")
    store.ingest_many(pipeline())
    try:
        with LiveServer(store, api_keys=[f"{READER}:read", WRITER]) as live:
            yield live
    finally:
        store.close()


def _cli(argv: list[str], url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([*argv, "--url", url] if argv[0] != "verify" else [*argv, "--witness", url])
    out, err = capsys.readouterr()
    for key in (READER, WRITER):
        assert key not in out and key not in err
    return code, out, err


def test_coverage_and_trace_present_the_configured_key(
        keyed: LiveServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["coverage", "--json"], TRACE):
        code, _, err = _cli(argv, keyed.url, capsys)
        assert code == 2 and "answered 401" in err and "PROVLINK_LINEAGE_API_KEY" in err

    monkeypatch.setenv("PROVLINK_LINEAGE_API_KEY", "not-a-key-of-this-server")
    code, _, err = _cli(["coverage", "--json"], keyed.url, capsys)
    assert code == 2 and "PROVLINK_LINEAGE_API_KEY" in err
    assert "not-a-key-of-this-server" not in err

    monkeypatch.setenv("PROVLINK_LINEAGE_API_KEY", READER)
    code, out, _ = _cli(["coverage", "--json"], keyed.url, capsys)
    assert code == 0
    report = json.loads(out)
    assert report["events"] == len(pipeline())
    code, out, _ = _cli(TRACE, keyed.url, capsys)
    assert code == 0
    names = {d["name"] for d in json.loads(out)["datasets"]}
    assert {"/data/raw.csv", "/data/features.parquet", "models/churn/3"} <= names


def test_on_the_servers_machine_api_keys_serve_as_the_client_key(
        keyed: LiveServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROVLINK_API_KEYS", f"{READER}:read,{WRITER}")
    code, out, _ = _cli(["coverage", "--json"], keyed.url, capsys)
    assert code == 0 and json.loads(out)["events"] == len(pipeline())


def test_verify_against_a_keyed_witness(
        keyed: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``verify --witness`` reads what the witness holds and hands it the latest checkpoint
    (a POST): a read-only key is refused with 403 and a message saying so."""
    build_log(tmp_path / "home" / "spool.db", random.Random(7), 12).close()
    verify = ["verify", "--public-key", KEY.verifier().vkey, "--json"]

    code, _, err = _cli(verify, keyed.url, capsys)
    assert code == 2 and "answered 401" in err and "PROVLINK_LINEAGE_API_KEY" in err

    monkeypatch.setenv("PROVLINK_LINEAGE_API_KEY", READER)
    code, _, err = _cli(verify, keyed.url, capsys)
    assert code == 2 and "answered 403" in err and "write scope" in err
    assert "PROVLINK_LINEAGE_API_KEY" in err

    monkeypatch.delenv("PROVLINK_LINEAGE_API_KEY")
    monkeypatch.setenv("PROVLINK_API_KEYS", f"{READER}:read,{WRITER}")  # the writer is chosen
    code, out, _ = _cli(verify, keyed.url, capsys)
    answer: dict[str, Any] = json.loads(out)
    assert code == 0 and answer["ok"], answer
    assert answer["witness"]["pushed"]["status"] == "consistent"

    monkeypatch.delenv("PROVLINK_API_KEYS")
    monkeypatch.setenv("PROVLINK_LINEAGE_API_KEY", WRITER)
    code, out, _ = _cli(verify, keyed.url, capsys)
    answer = json.loads(out)
    assert code == 0 and answer["witness"]["held"] == 1

    # coverage asks the same keyed witness which checkpoints it cosigned
    spool = Spool(tmp_path / "home" / "spool.db")
    origin = spool.origin
    spool.close()
    event = run_event("checkpointed", run_facets={
        "provlink_ledger": facet(origin=origin, treeSize=1)})
    posted = httpx.post(f"{keyed.url}/api/v1/lineage", json=event,
                        headers={"Authorization": f"Bearer {WRITER}"})
    assert posted.status_code == 201, posted.text
    monkeypatch.setenv("PROVLINK_LINEAGE_API_KEY", READER)
    code, out, _ = _cli(["coverage", "--json"], keyed.url, capsys)
    report = json.loads(out)
    assert code == 0 and report["events_with_witnessed_checkpoint"] == 1
