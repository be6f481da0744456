"""The ledger detects edits, deletions and reordering of spooled events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from provlink.delivery.spool import Spool
from provlink.governance.ledger import latest_entry_for_run, verify


def spool_with(tmp_path: Path, n: int = 5) -> Spool:
    spool = Spool(tmp_path / "spool.db")
    for i in range(n):
        spool.append({"run": {"runId": f"run-{i % 2}"}, "i": i})
    return spool


def tamper(tmp_path: Path, sql: str) -> None:
    with sqlite3.connect(tmp_path / "spool.db") as conn:
        conn.execute(sql)


def test_intact_chain_verifies(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    report = verify(spool)
    assert report.ok and report.entries == 5 and report.head_seq == 5
    assert report.head_hash == list(spool.entries())[-1].entry_hash


def test_edited_payload_is_detected(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    tamper(tmp_path,
           "UPDATE events SET payload = replace(payload, '\"i\":2', '\"i\":9') WHERE seq = 3")
    report = verify(spool)
    assert not report.ok
    assert report.problems == ("entry 3: payload was modified",)


def test_edited_payload_and_digest_is_detected(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    tamper(tmp_path, "UPDATE events SET payload = 'x', payload_sha256 = "
                     "'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881'"
                     " WHERE seq = 2")
    assert verify(spool).problems == ("entry 2: entry_hash does not match its contents",)


def test_deleted_entry_is_detected(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    tamper(tmp_path, "DELETE FROM events WHERE seq = 4")
    problems = verify(spool).problems
    assert "entry 5: expected sequence 4 (entries missing)" in problems
    assert "entry 5: prev_hash does not match entry 4" in problems


def test_latest_entry_for_run(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    seq, digest = latest_entry_for_run(spool, "run-0")
    assert seq == 5 and digest == list(spool.entries())[4].entry_hash
    assert latest_entry_for_run(spool, "nope") is None


def test_pruned_payloads_still_verify_and_cli_reports(tmp_path: Path, monkeypatch, capsys) -> None:
    import json
    import time

    from provlink.cli.main import main

    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path))
    spool = spool_with(tmp_path)
    spool.mark_sent([1, 2, 3])
    assert spool.prune_payloads(time.time() + 1) == 3
    assert [e.payload is None for e in spool.entries()] == [True, True, True, False, False]
    assert main(["verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger"]["ok"] is True
    tamper(tmp_path, "UPDATE events SET payload_sha256 = 'ff' WHERE seq = 1")
    assert main(["verify"]) == 1
    assert "BROKEN entry 1" in capsys.readouterr().out
