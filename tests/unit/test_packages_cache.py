"""The package digest is read from ``home`` while nothing was installed or removed, and read
from the metadata again as soon as something was (every Airflow task is its own process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provlink.capturing import environment
from provlink.capturing.environment import PACKAGES_CACHE, packages


@pytest.fixture(autouse=True)
def _uncached() -> None:
    packages.cache_clear()


def _install(site: Path, name: str, version: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_second_process_reads_the_digest_from_home(tmp_path: Path) -> None:
    first = packages(tmp_path)
    assert first == environment._read_packages()  # the same digest as reading the metadata
    cached = json.loads((tmp_path / PACKAGES_CACHE).read_text())
    assert cached["digest"] == first[0]
    # A later process (no in-process cache) takes the file, not the metadata: a planted
    # digest under the current key proves which one it read.
    cached["digest"] = "sha256:planted"
    (tmp_path / PACKAGES_CACHE).write_text(json.dumps(cached))
    packages.cache_clear()
    assert packages(tmp_path)[0] == "sha256:planted"


def test_an_install_on_sys_path_invalidates_the_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = packages(tmp_path)
    _install(site, "provlink-probe-demo", "1.0")
    packages.cache_clear()
    after = packages(tmp_path)
    assert after[0] != before[0]
    assert after == environment._read_packages()
    assert json.loads((tmp_path / PACKAGES_CACHE).read_text())["digest"] == after[0]


def test_an_unreadable_file_is_read_again_from_the_metadata(tmp_path: Path) -> None:
    (tmp_path / PACKAGES_CACHE).write_text("{not json")
    assert packages(tmp_path) == environment._read_packages()
    assert json.loads((tmp_path / PACKAGES_CACHE).read_text())["key"]


def test_no_home_means_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert packages(None) == environment._read_packages()
    assert not list(tmp_path.iterdir())
