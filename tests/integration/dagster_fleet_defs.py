"""The fleet test's code locations, one per host: the same small file pipeline under the
host's key prefix (Dagster allows one materializable definition of an asset key across code
locations). Every asset reads and writes files under ``FLEET_DATA_DIR``, its host's own.

    evens -> evens.csv ┐
    odds  -> odds.csv  ┴-> merged -> merged.csv
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions, MaterializeResult, MetadataValue, asset, define_asset_job
from provlink_dagster import with_lineage

JOB = "fleet"
FILES = {"evens": "evens.csv", "odds": "odds.csv", "merged": "merged.csv"}
EDGES = (("evens", "merged"), ("odds", "merged"))


def _file(asset_name: str) -> Path:
    return Path(os.environ["FLEET_DATA_DIR"]) / FILES[asset_name]


def _write(asset_name: str, numbers: list[int]) -> MaterializeResult:
    path = _file(asset_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("n\n" + "".join(f"{n}\n" for n in numbers))
    return MaterializeResult(metadata={"path": MetadataValue.path(str(path))})


def _read(asset_name: str) -> list[int]:
    return [int(line) for line in _file(asset_name).read_text().split()[1:]]


def host_defs(host: str) -> Definitions:
    @asset(key_prefix=[host])
    def evens() -> MaterializeResult:
        return _write("evens", [0, 2, 4])

    @asset(key_prefix=[host])
    def odds() -> MaterializeResult:
        return _write("odds", [1, 3, 5])

    @asset(key_prefix=[host], deps=[evens, odds])
    def merged() -> MaterializeResult:
        return _write("merged", sorted(_read("evens") + _read("odds")))

    assets = [evens, odds, merged]
    return with_lineage(Definitions(assets=assets,
                                    jobs=[define_asset_job(JOB, selection=assets)]))


host1 = host_defs("host1")
host2 = host_defs("host2")
