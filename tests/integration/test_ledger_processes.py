"""8 processes appending to one spool at once leave one consistent log: every entry, in
one order, and a checkpoint sequence where each checkpoint extends the one before."""

from __future__ import annotations

import json
from pathlib import Path

from provlink.delivery.spool import Spool
from provlink.governance.ledger import verify
from provlink.governance.log import Ledger
from provlink.governance.merkle import verify_consistency
from tests.integration.processes import run_together
from tests.unit.ledger_support import KEY

PROCESSES, EVENTS = 8, 40
CHILD = """
import sys
from pathlib import Path
from provlink.delivery.spool import Spool
from provlink.governance.log import Ledger
from tests.unit.ledger_support import KEY, event

worker = int(sys.argv[2])
spool = Spool(Path(sys.argv[1]))
ledger = Ledger(spool)
sys.stdin.readline()  # start together
for i in range(int(sys.argv[3])):
    appended = spool.append(event(i, f"worker-{worker}-run-{i // 2}"))
    if i % 3 == 0:
        ledger.checkpoint(KEY, anchor=i % 2 == 0)
    if i % 7 == 0:
        spool.mark_sent([appended.seq])
ledger.checkpoint(KEY)
spool.close()
"""


def test_eight_processes_appending_at_once_leave_one_consistent_log(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()
    run_together(CHILD, [[str(path), str(w), str(EVENTS)] for w in range(PROCESSES)])

    spool = Spool(path)
    report = verify(spool, verifier=KEY.verifier())
    assert report.ok, [str(p) for p in report.problems]
    events = list(spool.entries())
    assert len(events) == PROCESSES * EVENTS
    for worker in range(PROCESSES):
        mine = [json.loads(e.payload or "{}")["n"] for e in events
                if e.run_id.startswith(f"worker-{worker}-")]
        assert mine == list(range(EVENTS))  # every entry, in each writer's own order
    leaves = [i for i, *_ in spool.read(lambda t: t.leaves(0, 10**6))]
    assert leaves == list(range(report.entries))  # one gapless order
    ledger = Ledger(spool)
    checkpoints = ledger.checkpoints()
    assert len(checkpoints) == PROCESSES * (len(range(0, EVENTS, 3)) + 1)
    for older, newer in zip(checkpoints, checkpoints[1:], strict=False):
        m, n = older.checkpoint.size, newer.checkpoint.size
        assert m <= n
        assert verify_consistency(m, n, older.checkpoint.root, newer.checkpoint.root,
                                  ledger.consistency(m, n))
    assert checkpoints[-1].checkpoint.size == report.entries
