"""With no OpenLineage transport configured, events land in the embedded store."""

from __future__ import annotations

import os

import provlink
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.server.store import open_store


def test_events_go_to_the_embedded_store_without_any_configuration(tmp_path, monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "PROVLINK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.openlineage/openlineage.yml
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        data = tmp_path / "data.csv"
        with provlink.capture("zero_config_job"):
            data.write_text("a\n1\n")
        assert runtime.close(10.0)
    finally:
        set_runtime(None)
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'lineage.db'}")
    try:
        events = list(store.iter_events())
    finally:
        store.close()
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["job"]["name"] == "zero_config_job"
    assert events[1]["outputs"][0]["name"] == str(data.resolve())
