"""Registry anchors: a model version's ledger tags checked against the local log."""

from __future__ import annotations

from pathlib import Path

from provlink.delivery.spool import Spool
from provlink.governance.anchors import TAG_LEAF, TAG_LEAF_HASH, anchor_tags, check_anchor
from provlink.governance.log import Ledger
from tests.unit.ledger_support import KEY, edit_event_and_entry, event, recompute_everything


def anchored(tmp_path: Path) -> tuple[Spool, dict[str, str]]:
    spool = Spool(tmp_path / "spool.db")
    spool.append(event(0, "train"))
    done = spool.append(event(1, "train"))
    made = Ledger(spool).checkpoint(KEY)
    spool.append(event(2, "score"))
    tags = {**anchor_tags(done.leaf_index, done.entry_hash, made.note),
            "openlineage.run_id": "train"}
    return spool, tags


def test_an_intact_anchor_agrees(tmp_path: Path) -> None:
    spool, tags = anchored(tmp_path)
    assert check_anchor(Ledger(spool), "models:/m/1", tags, KEY.verifier()) is None


def test_each_kind_of_disagreement_is_named(tmp_path: Path) -> None:
    spool, tags = anchored(tmp_path)
    ledger = Ledger(spool)
    changed = {**tags, TAG_LEAF_HASH: "00" * 32}
    assert check_anchor(ledger, "m", changed).what == "registry tag changed"
    assert check_anchor(ledger, "m", {**tags, TAG_LEAF: "0"}).what == "registry tag changed"
    assert check_anchor(ledger, "m", {**tags, "openlineage.run_id": "other"}).what == \
        "registry tag changed"
    untagged = {"openlineage.run_id": "train"}
    assert check_anchor(ledger, "m", untagged).what == "anchor missing"
    assert check_anchor(ledger, "m", {}) is None  # not provlink's
    spool.close()
    edit_event_and_entry(tmp_path / "spool.db", 1)
    recompute_everything(tmp_path / "spool.db", None)
    assert check_anchor(Ledger(Spool(tmp_path / "spool.db")), "m", tags).what == "rewritten"
