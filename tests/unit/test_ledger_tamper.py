"""Property tests: every way of tampering with a random signed log is detected, 100%.

Each example builds a random log (events, delivery-state changes, checkpoints signed with
a fixed key), tampers with spool.db as someone with write access could, and checks that
``verify`` fails naming what is wrong — or, for a truncation or rewrite that also removes
the evidence kept locally, that the witness's copy or the key catches it.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provlink.delivery.spool import Spool
from provlink.governance.ledger import verify
from provlink.governance.log import Ledger
from provlink.governance.witness import CONSISTENT, MemoryBook, witness
from provlink.governance.witness_client import check_against_witness
from tests.unit.ledger_support import (
    ATTACKER,
    KEY,
    build_log,
    db,
    edit_event_and_entry,
    recompute_everything,
)

WITNESS = type(KEY)("witness.example/w1", bytes(range(2, 34)))
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
logs = st.tuples(st.integers(min_value=0, max_value=2**32), st.integers(min_value=2, max_value=16))


@contextmanager
def random_log(seed: int, n: int) -> Iterator[tuple[Path, random.Random]]:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="ledger-tamper-"))
    try:
        build_log(tmp / "spool.db", rng, n).close()
        yield tmp / "spool.db", rng
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(path: Path) -> Any:
    spool = Spool(path)
    try:
        return verify(spool, verifier=KEY.verifier(), all_signatures=True)
    finally:
        spool.close()


def whats(report: Any) -> set[str]:
    return {p.what for p in report.problems}


@given(logs)
@PROPERTY
def test_an_untouched_random_log_verifies(log: tuple[int, int]) -> None:
    with random_log(*log) as (path, _):
        report = check(path)
        assert report.ok, report.problems
        assert report.signed and report.uncovered == 0


@given(logs, st.data())
@PROPERTY
def test_editing_any_byte_of_any_entry_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        rows = conn.execute("SELECT leaf_index, entry FROM ledger_leaves").fetchall()
        index, text = data.draw(st.sampled_from(rows))
        pos = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        new = data.draw(st.characters(min_codepoint=32, max_codepoint=126).filter(
            lambda c: c != text[pos]))
        conn.execute("UPDATE ledger_leaves SET entry = ? WHERE leaf_index = ?",
                     (text[:pos] + new + text[pos + 1:], index))
        conn.close()
        report = check(path)
        assert not report.ok
        assert report.first is not None and report.first.index == index
        assert "edited" in whats(report)


@given(logs, st.data())
@PROPERTY
def test_editing_any_byte_of_any_event_payload_is_detected(log: tuple[int, int],
                                                           data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        rows = conn.execute("SELECT seq, leaf_index, payload FROM events").fetchall()
        seq, leaf, payload = data.draw(st.sampled_from(rows))
        pos = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
        new = data.draw(st.characters(min_codepoint=32, max_codepoint=126).filter(
            lambda c: c != payload[pos]))
        conn.execute("UPDATE events SET payload = ? WHERE seq = ?",
                     (payload[:pos] + new + payload[pos + 1:], seq))
        conn.close()
        report = check(path)
        assert not report.ok and report.first is not None and report.first.index == leaf


@given(logs, st.data())
@PROPERTY
def test_deleting_any_entry_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        size = conn.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()[0]
        index = data.draw(st.integers(min_value=0, max_value=size - 1))
        conn.execute("DELETE FROM ledger_leaves WHERE leaf_index = ?", (index,))
        if data.draw(st.booleans()):  # and the spooled event with it, if it was one
            conn.execute("DELETE FROM events WHERE leaf_index = ?", (index,))
        conn.close()
        report = check(path)
        assert not report.ok
        assert whats(report) & {"missing", "truncated"}
        assert report.first is not None and report.first.index == index


@given(logs, st.data())
@PROPERTY
def test_deleting_a_spooled_event_row_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events")]
        conn.execute("DELETE FROM events WHERE seq = ?", (data.draw(st.sampled_from(seqs)),))
        conn.close()
        assert "missing" in whats(check(path))


@given(logs, st.data())
@PROPERTY
def test_inserting_an_entry_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        size = conn.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()[0]
        at = data.draw(st.integers(min_value=0, max_value=size - 1))
        # shift every later leaf up by one and put a forged copy of leaf ``at`` there
        for index in range(size - 1, at - 1, -1):
            conn.execute("UPDATE ledger_leaves SET leaf_index = leaf_index + 1 "
                         "WHERE leaf_index = ?", (index,))
        conn.execute("INSERT INTO ledger_leaves (leaf_index, kind, entry, leaf_hash) "
                     "SELECT ?, kind, entry, leaf_hash FROM ledger_leaves WHERE leaf_index = ?",
                     (at, at + 1))
        conn.close()
        report = check(path)  # leaf ``at`` is a faithful copy; the first wrong one is next
        assert not report.ok and report.first is not None and report.first.index == at + 1


@given(logs)
@PROPERTY
def test_inserting_a_spooled_event_no_entry_recorded_is_detected(log: tuple[int, int]) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        conn.execute("INSERT INTO events (seq, run_id, payload, payload_sha256, entry_hash, "
                     "created_at) SELECT MAX(seq) + 1, 'forged', payload, payload_sha256, "
                     "'', created_at FROM events")
        conn.close()
        assert "inserted" in whats(check(path))


@given(logs, st.data())
@PROPERTY
def test_reordering_entries_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        rows = conn.execute("SELECT leaf_index, entry, leaf_hash FROM ledger_leaves").fetchall()
        a, b = data.draw(st.lists(st.sampled_from(rows), min_size=2, max_size=2, unique=True))
        for (index, _, _), (_, entry, digest) in ((a, b), (b, a)):
            conn.execute("UPDATE ledger_leaves SET entry = ?, leaf_hash = ? WHERE leaf_index = ?",
                         (entry, digest, index))
        conn.close()
        report = check(path)
        assert "reordered" in whats(report)
        assert report.first is not None and report.first.index == min(a[0], b[0])


@given(logs, st.data())
@PROPERTY
def test_truncating_the_tail_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        size = conn.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()[0]
        keep = data.draw(st.integers(min_value=0, max_value=size - 1))
        conn.execute("DELETE FROM ledger_leaves WHERE leaf_index >= ?", (keep,))
        conn.execute("DELETE FROM events WHERE leaf_index >= ?", (keep,))
        conn.close()
        report = check(path)
        assert "truncated" in whats(report)


@given(logs, st.data())
@PROPERTY
def test_flipping_a_delivery_state_is_detected(log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        rows = conn.execute("SELECT seq, state, leaf_index FROM events").fetchall()
        seq, state, leaf = data.draw(st.sampled_from(rows))
        flipped = data.draw(st.sampled_from([s for s in (0, 1, 2) if s != state]))
        conn.execute("UPDATE events SET state = ? WHERE seq = ?", (flipped, seq))
        conn.close()
        report = check(path)
        assert whats(report) == {"state"} and report.first is not None
        assert report.first.index == leaf


@given(logs, st.data(), st.booleans())
@PROPERTY
def test_a_rewrite_with_every_hash_recomputed_but_without_the_key_is_detected(
        log: tuple[int, int], data: Any, resign: bool) -> None:
    with random_log(*log) as (path, _):
        conn = db(path)
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events")]
        conn.close()
        edit_event_and_entry(path, data.draw(st.sampled_from(seqs)))
        recompute_everything(path, ATTACKER if resign else None)
        report = check(path)
        assert not report.ok
        assert whats(report) <= {"bad signature", "unsigned"}


@given(logs, st.data())
@PROPERTY
def test_truncation_or_rewrite_that_removes_local_evidence_is_caught_by_the_witness(
        log: tuple[int, int], data: Any) -> None:
    with random_log(*log) as (path, _):
        spool = Spool(path)
        ledger = Ledger(spool)
        book = MemoryBook()
        latest = ledger.latest_checkpoint()
        assert latest is not None
        assert witness(book, latest.note, [], None, WITNESS, source="test").status == CONSISTENT
        spool.close()
        conn = db(path)
        size = conn.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()[0]
        truncate = data.draw(st.booleans())
        if truncate:  # truncate, and drop the checkpoints that would tell
            keep = data.draw(st.integers(min_value=0, max_value=size - 1))
            conn.execute("DELETE FROM ledger_leaves WHERE leaf_index >= ?", (keep,))
            conn.execute("DELETE FROM events WHERE leaf_index >= ?", (keep,))
            conn.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (keep,))
            conn.execute("DELETE FROM ledger_nodes")
            conn.execute("DELETE FROM ledger_meta WHERE key = 'nodes_size'")
            conn.close()
        else:  # rewrite everything, unsigned (there is no key to check it with below)
            seqs = [r[0] for r in conn.execute("SELECT seq FROM events")]
            conn.close()
            edit_event_and_entry(path, data.draw(st.sampled_from(seqs)))
            recompute_everything(path, None)
        spool = Spool(path)
        try:
            if not truncate:
                assert verify(spool).ok  # no key, no witness: the local evidence is gone
            report = check_against_witness(Ledger(spool), _BookClient(book),
                                           witness_key=WITNESS.verifier(0x04), push=False)
        finally:
            spool.close()
        assert {p.what for p in report.problems} & {"truncated", "inconsistent with the witness"}


class _BookClient:
    """The witness client's interface over an in-memory book (no HTTP in unit tests)."""

    url = "memory:"

    def __init__(self, book: MemoryBook) -> None:
        self.book = book

    def held(self, origin: str) -> list[dict[str, Any]]:
        return [{"treeSize": d.checkpoint.size, "rootHash": d.checkpoint.root.hex(),
                 "status": d.status, "reason": d.reason, "cosigned": d.cosigned}
                for o, d, _, _ in self.book.rows if o == origin]

    def vkey(self) -> str:
        return WITNESS.verifier(0x04).vkey
