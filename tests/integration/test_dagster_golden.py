"""Golden events of the example Dagster assets under ``materialize()``: every event, as
emitted, compared with ``golden/dagster_ml_pipeline.json`` (see ``golden.py``; update with
``make goldens``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

dagster = pytest.importorskip("dagster")

from dagster import DagsterInstance, materialize
from provlink_dagster import lineage_assets

from provlink.testing import capture_events
from tests.integration.golden import assert_matches_golden

ROOT = Path(__file__).resolve().parents[2]


def test_example_assets_match_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the demo data dir lives under ~
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "provlink"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.syspath_prepend(str(ROOT / "example_pipelines" / "dagster"))
    import ml_pipeline

    with capture_events() as events:
        result = materialize(lineage_assets(ml_pipeline.PIPELINE),
                             instance=DagsterInstance.ephemeral(),
                             run_config={"ops": {"wine_model": {"config": {"c": 0.5}}}})
    assert result.success
    # START + COMPLETE of the Dagster run and of each of 4 steps, and the registry's two
    # actions inside wine_model (version created, its lineage tag set)
    assert len(events) == 12, " ".join(f"{e['job']['name']}:{e['eventType']}" for e in events)
    assert_matches_golden("dagster_ml_pipeline", list(events),
                          {str(tmp_path): "<tmp>", str(ROOT): "<repo>", sys.prefix: "<venv>"})


def test_golden_diff_names_the_first_differing_paths() -> None:
    from tests.integration.golden import Normaliser, first_differences

    golden = [{"job": {"name": "a"}, "run": {"facets": {"x": {"n": 1}}}, "inputs": []}]
    now = [{"job": {"name": "a"}, "run": {"facets": {"x": {"n": 2}, "y": {}}}, "inputs": [{}]}]
    assert first_differences(golden, now) == [
        "$[0].inputs: 0 items in the golden, 1 now",
        "$[0].run.facets.x.n: golden 1, now 2",
        "$[0].run.facets.y: new (now: {})",
    ]
    run = "0193a1b2-0000-7000-8000-000000000001"
    events = [{"job": {"name": "j"}, "eventType": "COMPLETE", "eventTime": "2026-01-02T03:04:05Z",
               "run": {"runId": run, "facets": {"parent": {"run": {"runId": run}}}}},
              {"job": {"name": "j"}, "eventType": "START", "run": {"runId": run.upper()}}]
    start, complete = Normaliser({"/tmp/x": "<tmp>"}).events(events)
    assert start["eventType"] == "START" and start["run"]["runId"] == "<uuid-1>"
    assert complete["eventTime"] == "<time>"
    assert complete["run"]["facets"]["parent"]["run"]["runId"] == "<uuid-1>"
