"""``provlink serve`` / ``export`` / ``import`` as users run them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from provlink.cli.server import register
from provlink.errors import ConfigError
from provlink.server.store import default_path, open_store
from tests.server.server_events import pipeline, run_event
from tests.server.support import free_port


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="provlink")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_serve_refuses_public_host_without_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is opened: neither the named store nor the default one appears."""
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    named = tmp_path / "named.db"
    assert _run(["serve", "--host", "0.0.0.0", "--db", f"sqlite:///{named}"]) == 2
    assert "refusing to bind 0.0.0.0" in capsys.readouterr().err
    assert _run(["serve", "--host", "::"]) == 2
    err = capsys.readouterr().err
    assert "refusing to bind ::" in err and "--api-key" in err
    assert not named.exists() and not (tmp_path / "home" / "lineage.db").exists()
    assert list(tmp_path.iterdir()) == []


def test_serve_reports_a_bad_api_key_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["serve", "--api-key", "short:read"]) == 2
    assert "provlink serve: API keys must be at least 8 characters" in capsys.readouterr().err


def test_zero_configuration_store_lives_under_provlink_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "lineage.db"
    store = open_store()
    try:
        store.ingest(run_event("zero-config"))
    finally:
        store.close()
    assert (tmp_path / "home" / "lineage.db").exists()
    with pytest.raises(ConfigError):
        open_store("mysql://nope")


def test_provlink_serve_subprocess_serves_the_store(tmp_path: Path) -> None:
    """The real command in its own process, over the default store under PROVLINK_HOME."""
    home = tmp_path / "home"
    store = open_store(str(home / "lineage.db"))
    store.ingest_many(pipeline())  # written before the server starts, as a sender would
    store.close()
    port = free_port()
    env = {**os.environ, "PROVLINK_HOME": str(home)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provlink.cli.main",
            "serve",
            "--port",
            str(port),
            "--api-key",
            "key-for-tests:read",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/namespaces/provlink-tests/jobs"
        headers = {"Authorization": "Bearer key-for-tests"}
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(url, headers=headers)
                break
            except httpx.ConnectError:
                assert process.poll() is None, (
                    process.stderr.read().decode() if process.stderr else ""
                )
                assert time.monotonic() < deadline, "provlink serve did not start"
                time.sleep(0.2)
        assert response.json()["totalCount"] == 3
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/api/v1/lineage", json=run_event("x"), headers=headers
            ).status_code
            == 403
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_export_then_import_round_trip(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.db"
    store = open_store(f"sqlite:///{source}")
    store.ingest_many(pipeline())
    store.close()
    dump = tmp_path / "events.jsonl"
    assert _run(["export", "--db", f"sqlite:///{source}", "-o", str(dump)]) == 0
    lines = dump.read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["producer"] for line in lines)

    broken = tmp_path / "with-errors.jsonl"
    bad = run_event("bad")
    del bad["job"]["namespace"]
    broken.write_text("\n".join([*lines, json.dumps(bad), "{not json", ""]) + "\n")
    assert _run(["import", "--db", store_url, str(broken)]) == 1
    err = capsys.readouterr().err
    assert "line 7: job.namespace" in err and "line 8: malformed JSON" in err
    assert "6 stored, 0 duplicates, 2 invalid" in err
    assert _run(["import", "--db", store_url, str(dump)]) == 0
    assert "0 stored, 6 duplicates, 0 invalid" in capsys.readouterr().err
    target = open_store(store_url)
    try:
        assert [e["eventTime"] for e in target.iter_events()] == [
            json.loads(x)["eventTime"] for x in lines
        ]
    finally:
        target.close()


def test_export_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    store = open_store(db)
    store.ingest(run_event("one"))
    store.close()
    assert _run(["export", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and json.loads(out[0])["job"]["name"] == "one"
