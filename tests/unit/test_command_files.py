"""Files touched by shell commands, which audit hooks cannot see."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provlink.capturing.command_files import diff_snapshots, paths_in_command, snapshot
from provlink.capturing.file_capture import FileAccesses, capture_files


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    return tmp_path.resolve()


def test_cp_subprocess_is_invisible_to_the_hook_but_found_by_snapshots(cwd: Path) -> None:
    (cwd / "a.csv").write_text("x,y\n1,2\n")
    command = "cp a.csv b.csv"
    paths = paths_in_command(command, cwd)
    before = snapshot(paths)
    with capture_files() as files:
        subprocess.run(command, shell=True, cwd=cwd, check=True)
    assert files.accesses == FileAccesses()
    assert diff_snapshots(before, snapshot(paths)) == FileAccesses(
        reads=(cwd / "a.csv",), writes=(cwd / "b.csv",)
    )


def test_modified_file_is_a_write_and_missing_both_times_is_nothing(cwd: Path) -> None:
    (cwd / "log.txt").write_text("1\n")
    command = "echo 2 >> log.txt; cat nothing.txt 2>/dev/null || true"
    paths = paths_in_command(command, cwd)
    before = snapshot(paths)
    subprocess.run(command, shell=True, cwd=cwd, check=True)
    result = diff_snapshots(before, snapshot(paths))
    assert result.writes == (cwd / "log.txt",)
    assert cwd / "nothing.txt" not in result.reads


def test_moved_input_is_a_read(cwd: Path) -> None:
    (cwd / "in.csv").write_text("x\n")
    paths = paths_in_command("mv in.csv out.csv", cwd)
    before = snapshot(paths)
    subprocess.run(["mv", "in.csv", "out.csv"], cwd=cwd, check=True)
    assert diff_snapshots(before, snapshot(paths)) == FileAccesses(
        reads=(cwd / "in.csv",), writes=(cwd / "out.csv",)
    )


def test_paths_in_command_handles_redirections_options_and_quotes(cwd: Path) -> None:
    (cwd / "my data.tsv").write_text("x")
    (cwd / "README").write_text("x")
    command = (
        "python -m tool --in='my data.tsv' --out=/data/out.parquet -v 3.14 README"
        " <raw >sorted 2>&1 | tee log &> all.log"
    )
    found = paths_in_command(command, cwd)
    assert found == [
        cwd / "my data.tsv",
        Path("/data/out.parquet"),
        cwd / "README",
        cwd / "raw",
        cwd / "sorted",
        cwd / "all.log",
    ]


def test_paths_in_command_skips_variables_and_urls_and_expands_globs(cwd: Path) -> None:
    for name in ("p1.csv", "p2.csv"):
        (cwd / name).write_text("x")
    command = "curl https://x.org/a.csv -o $OUT; wc -l p*.csv ~/missing.txt > counts"
    found = paths_in_command(command, cwd)
    home = Path("~").expanduser().resolve()
    assert found == [cwd / "p1.csv", cwd / "p2.csv", home / "missing.txt", cwd / "counts"]
