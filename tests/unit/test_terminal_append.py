"""A terminal event whose one-transaction append with its checkpoints fails is still
spooled, alone and without the anchor facet (the next checkpoint covers it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provlink.delivery.spool import Spool
from provlink.governance.log import Ledger
from tests.unit.ledger_support import KEY, event, signed_capture_point


def test_a_failed_checkpoint_rolls_back_and_the_terminal_event_is_appended_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(4):
        spool.append(event(i, "earlier"))
    Ledger(spool).checkpoint(KEY)  # caches the complete subtree of leaves 0..3
    spool.write(lambda t: t.conn.execute("DELETE FROM ledger_nodes"))  # now it is gone
    spool.close()
    point = signed_capture_point(tmp_path, monkeypatch)
    assert point.checkpoint is None
    spool = Spool(tmp_path / "spool.db")
    rows = list(spool.entries())
    assert [json.loads(r.payload or "{}")["eventType"] for r in rows[4:]] == ["START",
                                                                             "COMPLETE"]
    assert [r.leaf_index for r in rows[4:]] == [4, 5]  # no anchor checkpoint left behind
    assert "provlink_ledger" not in json.loads(rows[-1].payload or "{}")["run"].get("facets", {})
    assert len(Ledger(spool).checkpoints()) == 1  # the rolled-back ones are not stored
    spool.close()
