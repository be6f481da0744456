"""A terminal event whose one-transaction append with its checkpoints fails is still
spooled, alone and without the anchor facet (the next checkpoint covers it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provlink
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.governance.log import Ledger
from tests.unit.ledger_support import KEY, event


def test_a_failed_checkpoint_rolls_back_and_the_terminal_event_is_appended_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(4):
        spool.append(event(i, "earlier"))
    Ledger(spool).checkpoint(KEY)  # caches the complete subtree of leaves 0..3
    spool.write(lambda t: t.conn.execute("DELETE FROM ledger_nodes"))  # now it is gone
    spool.close()
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path))
    monkeypatch.setenv("PROVLINK_LEDGER_KEY", KEY.encoded())
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    runtime = Runtime(ProvlinkConfig.load())
    old = set_runtime(runtime)
    try:
        with provlink.capture("job", capture_files=False) as point:
            pass
    finally:
        set_runtime(old)
        runtime.close(0)
    assert point.checkpoint is None
    spool = Spool(tmp_path / "spool.db")
    rows = list(spool.entries())
    assert [json.loads(r.payload or "{}")["eventType"] for r in rows[4:]] == ["START",
                                                                             "COMPLETE"]
    assert [r.leaf_index for r in rows[4:]] == [4, 5]  # no anchor checkpoint left behind
    assert "provlink_ledger" not in json.loads(rows[-1].payload or "{}")["run"].get("facets", {})
    assert len(Ledger(spool).checkpoints()) == 1  # the rolled-back ones are not stored
    spool.close()
