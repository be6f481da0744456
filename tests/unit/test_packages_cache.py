"""The package digest and platform are read from ``home`` while nothing was installed or
removed and the kernel is the same, and read again as soon as something changed (every
Airflow task is its own process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provlink.capturing import environment
from provlink.capturing.environment import PACKAGES_CACHE, installed


@pytest.fixture(autouse=True)
def _uncached() -> None:
    installed.cache_clear()


def _install(site: Path, name: str, version: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_second_process_reads_the_digest_from_home(tmp_path: Path) -> None:
    first = installed(tmp_path)
    assert first == environment._read_installed()  # the same digest as reading the metadata
    cached = json.loads((tmp_path / PACKAGES_CACHE).read_text())
    assert cached["digest"] == first[0]
    # A later process (no in-process cache) takes the file, not the metadata: a planted
    # digest under the current key proves which one it read.
    cached["digest"] = "sha256:planted"
    (tmp_path / PACKAGES_CACHE).write_text(json.dumps(cached))
    installed.cache_clear()
    assert installed(tmp_path)[0] == "sha256:planted"


def test_an_install_on_sys_path_invalidates_the_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = installed(tmp_path)
    _install(site, "provlink-probe-demo", "1.0")
    installed.cache_clear()
    after = installed(tmp_path)
    assert after[0] != before[0]
    assert after == environment._read_installed()
    assert json.loads((tmp_path / PACKAGES_CACHE).read_text())["digest"] == after[0]


def test_an_unreadable_file_is_read_again_from_the_metadata(tmp_path: Path) -> None:
    (tmp_path / PACKAGES_CACHE).write_text("{not json")
    assert installed(tmp_path) == environment._read_installed()
    assert json.loads((tmp_path / PACKAGES_CACHE).read_text())["key"]


def test_no_home_means_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert installed(None) == environment._read_installed()
    assert not list(tmp_path.iterdir())


def test_the_platform_comes_from_the_file_until_the_kernel_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import platform

    assert installed(tmp_path).platform == platform.platform()
    cached = json.loads((tmp_path / PACKAGES_CACHE).read_text())
    cached["platform"] = "Planted-1.0"
    (tmp_path / PACKAGES_CACHE).write_text(json.dumps(cached))
    installed.cache_clear()
    assert installed(tmp_path).platform == "Planted-1.0"  # no `uname -p` in a later process
    real = os.uname()
    upgraded = os.uname_result((*real[:2], real.release + "-upgraded", *real[3:]))
    monkeypatch.setattr(os, "uname", lambda: upgraded)  # a new kernel after a reboot
    installed.cache_clear()
    assert installed(tmp_path).platform == platform.platform()
