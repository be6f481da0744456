"""The ledger end to end on a real spool: checkpoints, proofs, keys, prune, the CLI."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from provlink.cli.main import main
from provlink.delivery.spool import Spool
from provlink.governance.ledger import latest_entry_for_run, verify
from provlink.governance.log import Ledger
from provlink.governance.merkle import leaf_hash, verify_consistency, verify_inclusion
from provlink.governance.note import Note, Verifier, parse_checkpoint
from tests.unit.ledger_support import KEY, event, signed_capture_point


def spool_with(tmp_path: Path, n: int = 5) -> Spool:
    spool = Spool(tmp_path / "spool.db")
    for i in range(n):
        spool.append(event(i, f"run-{i % 2}"))
    return spool


def tamper(tmp_path: Path, sql: str) -> None:
    with sqlite3.connect(tmp_path / "spool.db") as conn:
        conn.execute(sql)


def test_checkpoints_prove_inclusion_and_consistency(tmp_path: Path) -> None:
    spool = spool_with(tmp_path, 3)
    ledger = Ledger(spool)
    first = ledger.checkpoint(KEY)
    for i in range(3, 11):
        spool.append(event(i, "run-x"))
    second = ledger.checkpoint(KEY)
    assert (first.checkpoint.size, second.checkpoint.size) == (3, 11)
    assert first.checkpoint.origin == spool.origin
    note = Note.parse(second.note)
    assert note.signed_by(KEY.verifier()) is True
    proof = ledger.consistency(3, 11)
    assert verify_consistency(3, 11, first.checkpoint.root, second.checkpoint.root, proof)
    for index in range(11):
        _, text, stored, _ = ledger.leaf(index)
        assert leaf_hash(text.encode()) == stored
        assert verify_inclusion(index, 11, stored, ledger.inclusion(index, 11),
                                second.checkpoint.root)
    report = verify(spool, verifier=KEY.verifier())
    assert report.ok and report.entries == 11 and report.signed and report.uncovered == 0


def test_without_a_key_checkpoints_are_unsigned_and_verify_says_so(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    made = Ledger(spool).checkpoint(None)
    assert parse_checkpoint(made.note)[1] is None  # bare checkpoint text, no signature lines
    report = verify(spool)
    assert report.ok and report.signed is None
    assert any("not signature-checked" in n for n in report.notes)
    assert not verify(spool, verifier=KEY.verifier()).ok  # a key expected, none signed


def test_edited_payload_is_named(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    Ledger(spool).checkpoint(KEY)
    tamper(tmp_path, "UPDATE events SET payload = replace(payload, '\"n\":2', '\"n\":9') "
                     "WHERE seq = 3")
    report = verify(spool, verifier=KEY.verifier())
    assert str(report.first) == "entry 2: edited: spooled event 3's payload changed"


def test_pruned_payloads_keep_leaves_checkpoints_and_proofs(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path))
    spool = spool_with(tmp_path)
    ledger = Ledger(spool)
    before = ledger.checkpoint(None)
    spool.mark_sent([1, 2, 3])
    assert spool.prune_payloads(time.time() + 1) == 3
    assert [e.payload is None for e in spool.entries()] == [True, True, True, False, False]
    after = ledger.checkpoint(None)
    assert len(ledger.checkpoints()) == 2  # never pruned
    assert verify_consistency(5, after.checkpoint.size, before.checkpoint.root,
                              after.checkpoint.root, ledger.consistency(5, after.checkpoint.size))
    assert main(["verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger"]["ok"] is True
    assert main(["ledger", "proof", "0", "--json"]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert verify_inclusion(0, proof["treeSize"], bytes.fromhex(proof["leafHash"]),
                            [base64.b64decode(p) for p in proof["proof"]],
                            after.checkpoint.root)
    tamper(tmp_path, "UPDATE events SET payload = NULL WHERE seq = 4")  # not pruned: missing
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "entry 3: payload missing" in out and "FAILED" in out


def test_latest_entry_for_run(tmp_path: Path) -> None:
    spool = spool_with(tmp_path)
    index, digest = latest_entry_for_run(spool, "run-0")
    assert index == 4 and digest == list(spool.entries())[4].entry_hash
    assert latest_entry_for_run(spool, "nope") is None


def test_keys_generate_checkpoint_and_verify_with_the_public_key(tmp_path: Path, monkeypatch,
                                                                 capsys) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path))
    spool_with(tmp_path).close()
    assert main(["keys", "generate"]) == 0
    vkey = capsys.readouterr().out.strip()
    key_file = tmp_path / "ledger.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    verifier = Verifier.parse(vkey)
    assert verifier.name == Spool(tmp_path / "spool.db").origin
    assert main(["keys", "generate"]) == 2  # never silently replaced
    capsys.readouterr()
    assert main(["ledger", "checkpoint"]) == 0
    note = capsys.readouterr().out
    assert Note.parse(note).signed_by(verifier) is True
    assert main(["verify", "--public-key", vkey]) == 0
    assert "signatures   checked" in capsys.readouterr().out
    other = tmp_path / "other.pub"
    other.write_text(KEY.verifier().vkey)
    assert main(["verify", "--public-key", str(other), "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and "unsigned" in answer["ledger"]["firstProblem"]


def test_a_key_from_the_environment_signs_capture_point_checkpoints(tmp_path: Path,
                                                                    monkeypatch) -> None:
    point = signed_capture_point(tmp_path, monkeypatch)
    assert point.ledger_leaf == 1 and point.checkpoint.checkpoint.size == 2
    assert Note.parse(point.checkpoint.note).signed_by(KEY.verifier())
    spool = Spool(tmp_path / "spool.db")
    terminal = json.loads(list(spool.entries())[-1].payload)
    facet = terminal["run"]["facets"]["provlink_ledger"]
    assert facet["treeSize"] == 1 and facet["signed"] is True  # covers START, not itself
    assert Note.parse(facet["checkpoint"]).signed_by(KEY.verifier())
    assert verify(spool, verifier=KEY.verifier()).ok


def test_a_bad_key_setting_says_how_to_fix_it(tmp_path: Path, monkeypatch) -> None:
    from provlink.config import ProvlinkConfig
    from provlink.errors import ConfigError
    from provlink.governance.keys import load_signer

    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path))
    monkeypatch.setenv("PROVLINK_LEDGER_KEY", str(tmp_path / "nope.key"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_signer(ProvlinkConfig.load())
