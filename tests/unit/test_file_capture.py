"""File I/O capture on the real libraries: what raises ``open`` audit events, what is wrapped."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from pyarrow import feather

from provlink.capturing.file_capture import (
    FileAccesses,
    FileCapture,
    capture_files,
    default_ignores,
)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})


def names(paths: tuple[Path, ...]) -> set[str]:
    return {p.name for p in paths}


def test_builtin_open_and_pathlib(cwd: Path) -> None:
    (cwd / "in.txt").write_text("x")
    with capture_files() as files:
        Path("in.txt").read_text()
        with open("out.txt", "w") as f:
            f.write("y")
        os.close(os.open("raw.bin", os.O_WRONLY | os.O_CREAT))
    assert files.accesses == FileAccesses(
        reads=(cwd / "in.txt",), writes=(cwd / "out.txt", cwd / "raw.bin")
    )


def test_temp_file_written_then_deleted_is_dropped(cwd: Path) -> None:
    with capture_files() as files:
        Path("scratch.tmp").write_text("x")
        Path("scratch.tmp").read_text()
        Path("scratch.tmp").unlink()
    assert files.accesses == FileAccesses()


def test_atomic_write_by_rename_reports_the_destination(cwd: Path) -> None:
    with capture_files() as files:
        Path("out.json.tmp").write_text("{}")
        os.replace("out.json.tmp", "out.json")
        Path("moved.tmp").write_text("{}")
        shutil.move("moved.tmp", "moved.json")
    assert files.accesses == FileAccesses(writes=(cwd / "moved.json", cwd / "out.json"))


def test_read_before_write_is_input_and_output_write_then_read_only_output(cwd: Path) -> None:
    (cwd / "counter.txt").write_text("1")
    (cwd / "report.txt").write_text("old")
    with capture_files() as files:
        n = int(Path("counter.txt").read_text())
        Path("counter.txt").write_text(str(n + 1))
        Path("report.txt").write_text("new")
        Path("report.txt").read_text()
    assert files.accesses.reads == (cwd / "counter.txt",)
    assert files.accesses.writes == (cwd / "counter.txt", cwd / "report.txt")


def test_failed_open_is_not_an_input_but_a_deleted_or_moved_input_is(cwd: Path) -> None:
    (cwd / "inbox.csv").write_text("a\n")
    (cwd / "queue.csv").write_text("a\n")
    with capture_files() as files:
        with pytest.raises(FileNotFoundError):
            Path("missing.txt").read_text()
        Path("inbox.csv").read_text()
        Path("inbox.csv").unlink()
        os.rename("queue.csv", "done.csv")
    assert files.accesses.reads == (cwd / "inbox.csv", cwd / "queue.csv")
    assert files.accesses.writes == (cwd / "done.csv",)


def test_relative_paths_are_anchored_at_open_time_and_symlinks_resolved(cwd: Path) -> None:
    (cwd / "sub").mkdir()
    (cwd / "sub" / "data.txt").write_text("x")
    (cwd / "link.txt").symlink_to(cwd / "sub" / "data.txt")
    with capture_files() as files:
        os.chdir("sub")
        Path("data.txt").read_text()
        os.chdir(cwd)
        Path("link.txt").read_text()
    assert files.accesses.reads == (cwd / "sub" / "data.txt",)


def test_pandas_csv_c_and_pyarrow_engines_raise_open_events(cwd: Path, frame: pd.DataFrame) -> None:
    frame.to_csv("raw.csv", index=False)
    frame.to_csv("raw2.csv", index=False)
    with capture_files() as files:
        pd.read_csv("raw.csv", engine="c")
        pd.read_csv("raw2.csv", engine="pyarrow")
        frame.to_csv("out.csv")
    assert files.accesses == FileAccesses(
        reads=(cwd / "raw.csv", cwd / "raw2.csv"), writes=(cwd / "out.csv",)
    )


def test_pandas_parquet_is_captured_by_wrapping(cwd: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet("in.parquet")
    with capture_files() as files:
        pd.read_parquet("in.parquet")
        frame.to_parquet(cwd / "out.parquet")
        frame.to_parquet("parts", partition_cols=["name"])
    assert files.accesses == FileAccesses(
        reads=(cwd / "in.parquet",), writes=(cwd / "out.parquet", cwd / "parts")
    )


def test_pandas_feather_and_pickle(cwd: Path, frame: pd.DataFrame) -> None:
    frame.to_feather("in.feather")
    with capture_files() as files:
        pd.read_feather("in.feather")
        frame.to_feather("out.feather")
        frame.to_pickle("out.pkl")
    assert files.accesses == FileAccesses(
        reads=(cwd / "in.feather",), writes=(cwd / "out.feather", cwd / "out.pkl")
    )


def test_pyarrow_parquet_entry_points(cwd: Path) -> None:
    table = pa.table({"x": [1, 2]})
    pq.write_table(table, "a.parquet")
    pq.write_table(table, "b.parquet")
    pq.write_table(table, "c.parquet")
    with capture_files() as files:
        pq.read_table("a.parquet")
        pq.ParquetFile(str(cwd / "b.parquet")).read()
        pq.ParquetDataset("c.parquet").read()
        pq.write_table(table, "w1.parquet")
        with pq.ParquetWriter(cwd / "w2.parquet", table.schema) as writer:
            writer.write_table(table)
        pq.write_table(table, "file://" + str(cwd / "w3.parquet"))
        with open(cwd / "handle.parquet", "wb") as f:
            pq.write_table(table, f)
    assert names(files.accesses.reads) == {"a.parquet", "b.parquet", "c.parquet"}
    assert names(files.accesses.writes) == {
        "w1.parquet",
        "w2.parquet",
        "w3.parquet",
        "handle.parquet",
    }


def test_pyarrow_feather_and_csv(cwd: Path) -> None:
    table = pa.table({"x": [1, 2]})
    feather.write_feather(table, "in.feather")
    pacsv.write_csv(table, "in.csv")
    with capture_files() as files:
        feather.read_table("in.feather")
        pacsv.read_csv("in.csv")
        feather.write_feather(table, "out.feather")
        pacsv.write_csv(table, "out.csv")
    assert files.accesses == FileAccesses(
        reads=(cwd / "in.csv", cwd / "in.feather"), writes=(cwd / "out.csv", cwd / "out.feather")
    )


def test_pyarrow_dataset_directory_counts_as_one_path(cwd: Path) -> None:
    table = pa.table({"x": [1, 2], "part": ["p", "q"]})
    pads.write_dataset(table, "src", format="parquet", partitioning=["part"])
    with capture_files() as files:
        pads.dataset("src", format="parquet").to_table()
        pads.write_dataset(table, "dst", format="parquet", partitioning=["part"])
        pq.write_to_dataset(table, "dst2")
        for part in (cwd / "dst").rglob("*.parquet"):
            part.read_bytes()  # reading back one's own output is folded, not an input
    assert files.accesses == FileAccesses(reads=(cwd / "src",), writes=(cwd / "dst", cwd / "dst2"))


def test_remote_uris_and_buffers_are_not_local_files(cwd: Path) -> None:
    table = pa.table({"x": [1]})
    with capture_files() as files:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        pq.read_table(pa.BufferReader(sink.getvalue()))
        with pytest.raises(OSError):
            pq.read_table("s3://no-such-bucket-provlink/x.parquet")
    assert files.accesses == FileAccesses()


def test_pickle_joblib_numpy_go_through_open(cwd: Path) -> None:
    with open("in.pkl", "wb") as f:
        pickle.dump({"a": 1}, f)
    joblib.dump({"w": np.arange(3)}, "in.joblib")
    np.save("in.npy", np.arange(3))
    with capture_files() as files:
        with open("in.pkl", "rb") as f:
            pickle.load(f)
        joblib.load("in.joblib")
        np.load("in.npy")
        joblib.dump({"w": np.arange(3)}, "model.joblib", compress=3)
        np.save("out.npy", np.arange(3))
        np.savez("out.npz", a=np.arange(3))
    assert files.accesses == FileAccesses(
        reads=(cwd / "in.joblib", cwd / "in.npy", cwd / "in.pkl"),
        writes=(cwd / "model.joblib", cwd / "out.npy", cwd / "out.npz"),
    )


def test_sqlite_database_changed_is_an_output_unchanged_an_input(cwd: Path) -> None:
    with sqlite3.connect("ref.db") as db:
        db.execute("create table t(a)")
    db.close()
    with capture_files() as files:
        ref = sqlite3.connect("ref.db")
        ref.execute("select * from t").fetchall()
        ref.close()
        out = sqlite3.connect(str(cwd / "runs.db"))
        out.execute("create table r(a)")
        out.commit()
        out.close()
        sqlite3.connect(":memory:").close()
    assert files.accesses == FileAccesses(reads=(cwd / "ref.db",), writes=(cwd / "runs.db",))


def test_threads_started_by_the_task_count(cwd: Path) -> None:
    def work(i: int) -> None:
        Path(f"t{i}.txt").write_text(str(i))

    with capture_files() as files:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert names(files.accesses.writes) == {"t0.txt", "t1.txt", "t2.txt", "t3.txt"}


def test_nested_recorders_and_out_of_order_stop(cwd: Path) -> None:
    outer = FileCapture()
    outer.start()
    Path("a.txt").write_text("a")
    inner = FileCapture()
    inner.start()
    Path("b.txt").write_text("b")
    outer_result = outer.stop()
    Path("c.txt").write_text("c")
    inner_result = inner.stop()
    Path("d.txt").write_text("d")
    assert names(outer_result.writes) == {"a.txt", "b.txt"}
    assert names(inner_result.writes) == {"b.txt", "c.txt"}
    with pytest.raises(RuntimeError):
        inner.start()


def test_nothing_is_recorded_without_an_active_recorder(cwd: Path) -> None:
    with capture_files():
        pass
    Path("between.txt").write_text("x")
    with capture_files() as files:
        Path("during.txt").write_text("x")
    assert files.accesses == FileAccesses(writes=(cwd / "during.txt",))


def test_interpreter_files_and_imports_are_ignored(cwd: Path) -> None:
    (cwd / "user_module_pl.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(cwd))
    try:
        with capture_files() as files:
            importlib.reload(json)
            importlib.import_module("user_module_pl")
            Path(pd.__file__).read_text()  # a site-packages file read as data
            Path(json.__file__).read_text()  # stdlib
            os.open(cwd, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        sys.path.remove(str(cwd))
        sys.modules.pop("user_module_pl", None)
    assert files.accesses == FileAccesses()


def test_a_data_set_a_library_ships_is_an_input_its_other_files_are_not(cwd: Path) -> None:
    """scikit-learn's load_wine reads a CSV in site-packages (and its .rst description): the
    CSV is where the data came from; the description, like code and styles, is not data."""
    import sklearn.datasets

    data = Path(sklearn.datasets.__file__).parent / "data" / "wine_data.csv"
    with capture_files() as files:
        sklearn.datasets.load_wine()
        Path(pd.__file__).read_text()
    assert files.accesses == FileAccesses(reads=(data.resolve(),))


def test_ignore_prefixes_are_configurable(cwd: Path) -> None:
    (cwd / "scratch").mkdir()
    with capture_files(ignore=[cwd / "scratch"]) as files:
        Path("scratch/x.txt").write_text("x")
        Path("kept.txt").write_text("x")
        Path(pd.__file__).read_text()
    assert files.accesses.writes == (cwd / "kept.txt",)
    # with an explicit list, the defaults no longer apply
    assert files.accesses.reads == (Path(pd.__file__).resolve(),)


def test_default_ignores_read_orchestrator_homes_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dg"))
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "pl"))
    ignores = default_ignores()
    for expected in ("af/logs", "af/airflow.db", "dg", "pl"):
        assert str(tmp_path / expected) in ignores
    assert sys.prefix in ignores
    assert not any("mlflow" in p for p in ignores)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )


def test_import_and_start_do_not_import_heavy_libraries() -> None:
    out = run_python(
        "import sys, provlink.capturing.file_capture as fc\n"
        "c = fc.FileCapture(); c.start(); c.stop()\n"
        "heavy = {'pandas', 'pyarrow', 'numpy', 'airflow', 'dagster', 'mlflow'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    assert out.stdout.strip() == "[]"


def test_libraries_imported_after_start_are_wrapped_on_import(tmp_path: Path) -> None:
    out = run_python(
        "import os, provlink.capturing.file_capture as fc\n"
        f"os.chdir({str(tmp_path)!r})\n"
        "c = fc.FileCapture(); c.start()\n"
        "import pandas as pd\n"
        "pd.DataFrame({'a': [1]}).to_parquet('late.parquet')\n"
        "print([p.name for p in c.stop().writes])\n"
    )
    assert out.stdout.strip() == "['late.parquet']"


def test_threads_marked_internal_are_not_lineage(tmp_path) -> None:
    import threading

    from provlink.capturing.file_capture import capture_files
    from provlink.threads import ignore_this_thread

    def provlink_side() -> None:
        ignore_this_thread()
        (tmp_path / "transport.log").write_text("event")

    with capture_files(ignore=[]) as files:
        worker = threading.Thread(target=provlink_side)
        worker.start()
        worker.join()
        (tmp_path / "task_output.txt").write_text("data")
    writes = {p.name for p in files.accesses.writes}
    assert writes == {"task_output.txt"}
