"""What a user's log shows when PostgreSQL cannot be reached: one provlink line, not
psycopg_pool's stream ("error connecting in 'pool-1'" at every reconnection attempt)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provlink import pg_pool_log
from provlink.delivery.pg_spool import PgSpool
from provlink.errors import ConfigError, SpoolError
from tests.integration.test_delivery import free_port
from tests.integration.test_fleet_spool import ADMIN, pg_url  # noqa: F401 (fixture)

psycopg = pytest.importorskip("psycopg")
CLI = "from provlink.cli.main import main; raise SystemExit(main())"
CAPTURE = """
import provlink
with provlink.capture("job_down", capture_files=False):
    provlink.add_parameters(i=1)
print("captured")
"""


def _run(args: list[str], home: Path, spool_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVLINK_HOME": str(home), "PROVLINK_SPOOL_URL": spool_url,
           "PROVLINK_SPOOL_TIMEOUT": "1", "OPENLINEAGE_URL": f"http://127.0.0.1:{free_port()}"}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_status_with_the_fleet_spool_down_prints_one_provlink_error(tmp_path: Path) -> None:
    down = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/fleet"
    done = _run(["-c", CLI, "status"], tmp_path, down)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("provlink: error: cannot reach the PostgreSQL spool at "
                               "postgresql://postgres:***@127.0.0.1:")
    assert "Connection refused" in lines[0] and "hunter2" not in done.stderr


def test_a_capture_falling_back_logs_one_warning(tmp_path: Path) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/fleet"
    done = _run(["-c", CAPTURE], tmp_path, down)
    assert done.returncode == 0 and done.stdout.strip() == "captured", done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "cannot reach the PostgreSQL spool" in lines[0]
    assert "spooling locally at" in lines[0]
    assert "error connecting" not in done.stderr


def test_a_spool_losing_its_database_warns_once_and_counts_the_rest(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.WARNING)
    spool = PgSpool(pg_url, timeout=1.0)
    name = spool._pool_name
    with psycopg.connect(ADMIN, autocommit=True) as conn:  # connections cut, reconnects refused
        conn.execute(f"DROP DATABASE {pg_url.rsplit('/', 1)[1]} WITH (FORCE)")
    for _ in range(3):
        with pytest.raises(SpoolError, match="cannot use the PostgreSQL spool"):
            spool.pending(10)
        time.sleep(1.0)  # the pool retries in the background meanwhile
    shown = pg_pool_log.suppressed(name)
    spool.close()
    assert [r for r in caplog.records if r.name == "psycopg.pool"] == []
    ours = [r.getMessage() for r in caplog.records if r.name == "provlink.postgres"]
    assert shown >= 2  # the pool did complain more than once...
    assert len(ours) == 2, ours  # ...the log has the first, then how many more there were
    assert f"PostgreSQL pool {name!r}" in ours[0] and "keeps retrying" in ours[0]
    assert "0x" not in ours[0]  # no object reprs: "discarding closed connection: a connection"
    assert ours[1].endswith(f"{shown - 1} more pool messages while it was open were not shown")


def test_serve_on_an_unreachable_database_is_one_clear_error(
        caplog: pytest.LogCaptureFixture) -> None:
    from provlink.server.postgres_store import PostgresStore

    caplog.set_level(logging.WARNING)
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/lineage"
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        PostgresStore(url, open_timeout=1.5)
    assert time.monotonic() - started < 1.5 + 5  # not the pool's 30 s default wait
    message = str(caught.value)
    assert message.startswith("cannot reach the PostgreSQL store at "
                              "postgresql://postgres:***@127.0.0.1:")
    assert "Connection refused" in message and "hunter2" not in message
    assert [r for r in caplog.records if r.name.startswith("psycopg")] == []


def test_a_closed_pools_late_connect_error_stays_off_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    name = pg_pool_log.pool_name("spool")
    pg_pool_log.watch(name, "postgresql://postgres@127.0.0.1:1/fleet")
    pg_pool_log.opened(name)
    pg_pool_log.closing(name)
    pg_pool_log.closed(name)
    other = logging.getLogger(pg_pool_log.POOL_LOGGER)
    with caplog.at_level(logging.WARNING):  # the connect under way at close() ends later
        other.warning("error connecting in %r: connection timeout expired", name)
        other.warning("error connecting in %r: connection refused", "someone-elses-pool")
    shown = [r.getMessage() for r in caplog.records]
    assert shown == ["error connecting in 'someone-elses-pool': connection refused"]
