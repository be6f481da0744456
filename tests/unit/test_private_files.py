"""Private files: PROVLINK_HOME is 0700, every file provlink writes there 0600 (WAL and SHM
included), whatever the umask; another user's home and symlinked spool/store paths are refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import provlink
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.errors import PrivateFileError, ProvlinkError
from provlink.server.sqlite_store import SqliteStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: would give 0755 dirs and 0644 files
    yield
    os.umask(old)


@pytest.fixture
def zero_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "PROVLINK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.openlineage/openlineage.yml
    monkeypatch.chdir(tmp_path)
    return tmp_path / "nested" / "home"


def test_home_and_every_file_in_it_are_private_after_real_writes(zero_config: Path,
                                                                   loose_umask: None) -> None:
    home = zero_config
    runtime = Runtime(ProvlinkConfig.load(home=home))
    set_runtime(runtime)
    try:
        for i in range(3):
            with provlink.capture(f"private_{i}", capture_files=False,
                                  parameters={"query": "SELECT * FROM customers"}):
                pass
        assert runtime.flush(20.0)  # delivered into the embedded store: lineage.db written
        files = {p.name: mode(p) for p in home.iterdir()}
        # the connections are open, so SQLite's side files exist: we check the real ones
        for name in ("spool.db", "spool.db-wal", "spool.db-shm",
                     "lineage.db", "lineage.db-wal", "lineage.db-shm"):
            assert name in files, sorted(files)
        assert {name: oct(m) for name, m in files.items()} == {n: "0o600" for n in files}
        assert mode(home) == 0o700
    finally:
        runtime.close(2.0)
        set_runtime(None)
    assert all(mode(p) == 0o600 for p in home.iterdir())


def test_an_older_world_readable_home_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    for name in ("spool.db", "spool.db-wal"):
        (home / name).touch(mode=0o644)
    os.chmod(home / "spool.db", 0o644)
    Spool(home / "spool.db").append({"run": {"runId": "r"}})
    assert mode(home) == 0o700
    assert {p.name: mode(p) for p in home.iterdir()} == {
        "spool.db": 0o600, "spool.db-wal": 0o600, "spool.db-shm": 0o600}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_home_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "theirs"
    home.mkdir(mode=0o755)
    os.chown(home, 65534, 65534)
    with pytest.raises(PrivateFileError, match="owned by uid 65534.*Set PROVLINK_HOME") as info:
        Spool(home / "spool.db")
    assert isinstance(info.value, ProvlinkError)
    assert list(home.iterdir()) == []  # nothing was written into it
    assert mode(home) == 0o755  # and it was not touched


def test_a_home_not_ours_without_root_is_refused() -> None:
    if os.geteuid() == 0:
        pytest.skip("root owns every system directory")
    with pytest.raises(PrivateFileError, match="owned by uid 0"):
        Spool(Path("/") / "spool.db")


def test_a_symlinked_spool_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.db"
    elsewhere.write_bytes(b"")
    (home / "spool.db").symlink_to(elsewhere)
    with pytest.raises(PrivateFileError, match="symlink.*Remove the link"):
        Spool(home / "spool.db")
    assert elsewhere.read_bytes() == b""


def test_a_symlinked_wal_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "spool.db-wal").symlink_to(tmp_path / "stolen-wal")
    with pytest.raises(PrivateFileError, match="spool.db-wal is a symlink"):
        Spool(home / "spool.db")
    assert not (tmp_path / "stolen-wal").exists()


def test_the_store_file_is_private_and_never_a_symlink(tmp_path: Path, loose_umask: None) -> None:
    store = SqliteStore(tmp_path / "srv" / "lineage.db")
    try:
        assert mode(tmp_path / "srv") == 0o700
        for name in ("lineage.db", "lineage.db-wal", "lineage.db-shm"):
            assert mode(tmp_path / "srv" / name) == 0o600, name
    finally:
        store.close()
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "srv" / "lineage.db")
    with pytest.raises(PrivateFileError, match="symlink"):
        SqliteStore(link)


def test_keys_and_the_failure_log_are_private_too(tmp_path: Path, loose_umask: None) -> None:
    import subprocess
    import sys

    from provlink.delivery.failures import STATUS_FILE, FailureLog

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVLINK_")}
    out = subprocess.run([sys.executable, "-m", "provlink.cli.main", "keys", "generate"],
                         capture_output=True, text=True, env={**env, "PROVLINK_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    FailureLog(home / STATUS_FILE).record("capture point 'x'", "boom")
    files = {p.name: mode(p) for p in home.iterdir()}
    assert {"ledger.key", "ledger.pub", STATUS_FILE} <= set(files)
    assert files == {name: 0o600 for name in files}
    assert mode(home) == 0o700
