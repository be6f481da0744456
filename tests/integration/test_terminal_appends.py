"""Processes appending capture points to one spool at once (SQLite, and the PostgreSQL
fleet spool): one verifying log, and each terminal event's anchor checkpoint, the event and
the checkpoint covering it are one transaction, so no other writer's entry falls between."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provlink.delivery.spool import Spool
from provlink.governance.ledger import verify
from provlink.governance.log import Ledger
from provlink.governance.merkle import verify_consistency
from tests.integration.processes import run_together
from tests.server.support import postgres_url
from tests.unit.ledger_support import KEY

PROCESSES, POINTS = 4, 15
CHILD = """
import sys
from pathlib import Path
from provlink.delivery.runtime import append_terminal
from tests.unit.ledger_support import KEY, event

where, worker, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if where.startswith("postgresql://"):
    from provlink.delivery.pg_spool import PgSpool
    spool = PgSpool(where, timeout=30.0)
else:
    from provlink.delivery.spool import Spool
    spool = Spool(Path(where))
sys.stdin.readline()  # start together
for i in range(points):
    run = f"worker-{worker}-run-{i}"
    spool.append(event(2 * i, run))
    append_terminal(spool, KEY, lambda anchor: {**event(2 * i + 1, run),
                                                "anchor": anchor.checkpoint.size,
                                                "anchor_id": anchor.id})
spool.close()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "spool.db"
        Spool(path).close()
        yield str(path)
        return
    yield from postgres_url()


def open_spool(where: str) -> Spool:
    if where.startswith("postgresql://"):
        from provlink.delivery.pg_spool import PgSpool

        return PgSpool(where, timeout=30.0)
    return Spool(Path(where))


def test_concurrent_capture_points_form_one_log_with_each_anchor_next_to_its_event(
        where: str) -> None:
    run_together(CHILD, [[where, str(w), str(POINTS)] for w in range(PROCESSES)])

    spool = open_spool(where)
    try:
        report = verify(spool, verifier=KEY.verifier())
        assert report.ok, [str(p) for p in report.problems]
        events = list(spool.entries())
        assert len(events) == report.entries == PROCESSES * POINTS * 2
        for worker in range(PROCESSES):
            mine = [json.loads(e.payload or "{}")["n"] for e in events
                    if e.run_id.startswith(f"worker-{worker}-")]
            assert mine == list(range(2 * POINTS))  # each writer's own order
        checkpoints = {cp.id: cp for cp in Ledger(spool).checkpoints()}
        assert len(checkpoints) == PROCESSES * POINTS * 2  # an anchor and a cover per point
        for entry in events:
            payload = json.loads(entry.payload or "{}")
            if "anchor" not in payload:
                continue
            # nothing between the anchor and its event, the cover is the next checkpoint
            assert payload["anchor"] == entry.leaf_index
            anchor, cover = checkpoints[payload["anchor_id"]], checkpoints[payload["anchor_id"] + 1]
            assert anchor.checkpoint.size == entry.leaf_index
            assert cover.checkpoint.size == entry.leaf_index + 1
        ordered = [checkpoints[i] for i in sorted(checkpoints)]
        ledger = Ledger(spool)
        for older, newer in zip(ordered, ordered[1:], strict=False):
            m, n = older.checkpoint.size, newer.checkpoint.size
            assert m <= n
            assert verify_consistency(m, n, older.checkpoint.root, newer.checkpoint.root,
                                      ledger.consistency(m, n))
    finally:
        spool.close()
