"""Dagster: wall time added per asset by with_lineage/lineage_assets, and delivery lag.

100 chained assets are materialized in one process with and without the wrapper
(alternating, best of N), through the default spool + sender into the embedded store.
Lag: from a step's STEP_SUCCESS until its COMPLETE event is readable in the store.

    .venv/bin/python benchmarks/bench_dagster.py [--assets 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any


def build(n: int) -> list[Any]:
    from dagster import AssetIn, asset

    def make(i: int) -> Any:
        ins = {"prev": AssetIn(f"a{i - 1}")} if i else {}

        @asset(name=f"a{i}", ins=ins)
        def step(**kwargs: Any) -> int:
            return i

        return step

    return [make(i) for i in range(n)]


def timed(assets: list[Any]) -> float:
    from dagster import DagsterInstance, materialize, mem_io_manager

    start = time.perf_counter()
    result = materialize(assets, instance=DagsterInstance.ephemeral(),
                         resources={"io_manager": mem_io_manager})
    assert result.success
    return time.perf_counter() - start


def lag(n: int) -> float:
    """Seconds from the last step's success to its COMPLETE event in the embedded store."""
    from provlink_dagster import lineage_assets

    import provlink
    from provlink.server.store import open_store

    timed(lineage_assets(build(n)))
    done = time.perf_counter()
    provlink.flush(30)
    store = open_store(None)
    try:
        found = sum(1 for e in store.iter_events() if e.get("eventType") == "COMPLETE")
    finally:
        store.close()
    assert found >= n, found
    return time.perf_counter() - done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PROVLINK_HOME", tempfile.mkdtemp(prefix="provlink-bench-"))
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="dagster-bench-"))
    from provlink_dagster import lineage_assets

    plain, wrapped = build(args.assets), lineage_assets(build(args.assets))
    timed(plain), timed(wrapped)  # warm imports and caches
    base, with_lineage = [], []
    for _ in range(args.repeat):
        base.append(timed(plain))
        with_lineage.append(timed(wrapped))
    b, w = min(base), min(with_lineage)
    print(f"assets={args.assets} without={b:.3f}s with={w:.3f}s ratio={w / b:.2f} "
          f"added_per_asset={(w - b) / args.assets * 1000:.2f}ms")
    print(f"delivery_lag_after_run={lag(args.assets):.3f}s")


if __name__ == "__main__":
    main()
