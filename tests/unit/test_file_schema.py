"""Schemas of tabular files from footers and headers, on files written by real libraries."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from pyarrow import feather

from provlink.capturing.file_schema import tabular_schema


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [1, 2], "score": [0.5, 1.5], "ok": [True, False], "name": ["a", "b"]}
    )


def test_parquet_footer_from_pandas(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(tmp_path / "f.parquet", index=False)
    schema = tabular_schema(tmp_path / "f.parquet")
    assert schema is not None
    assert [name for name, _ in schema] == ["id", "score", "ok", "name"]
    assert schema[:3] == [("id", "int64"), ("score", "double"), ("ok", "bool")]
    assert schema[3][1] in ("string", "large_string")


def test_parquet_without_suffix_is_recognised_by_magic(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": pa.array([1], pa.int32())}), tmp_path / "part-00000")
    assert tabular_schema(tmp_path / "part-00000") == [("x", "int32")]


def test_parquet_directory_uses_first_data_file(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2], "part": ["a", "b"]})
    pads.write_dataset(table, tmp_path / "ds", format="parquet", partitioning=["part"])
    (tmp_path / "ds" / "_SUCCESS").write_text("")
    assert tabular_schema(tmp_path / "ds") == [("x", "int64")]
    (tmp_path / "empty").mkdir()
    assert tabular_schema(tmp_path / "empty") is None


def test_feather(tmp_path: Path) -> None:
    feather.write_feather(pa.table({"x": [1.0]}), tmp_path / "f.feather")
    assert tabular_schema(tmp_path / "f.feather") == [("x", "double")]


def test_csv_header_and_cheap_types(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.assign(note=["", "x, y"]).to_csv(tmp_path / "f.csv", index=False)
    assert tabular_schema(tmp_path / "f.csv") == [
        ("id", "int64"),
        ("score", "double"),
        ("ok", "bool"),
        ("name", "string"),
        ("note", "string"),
    ]


def test_tsv_and_sniffed_semicolon(tmp_path: Path) -> None:
    (tmp_path / "f.tsv").write_text("a b\tc\n1\t2\n")
    (tmp_path / "g.csv").write_text("\ufeffa;b\n1;x\n")
    assert tabular_schema(tmp_path / "f.tsv") == [("a b", "int64"), ("c", "int64")]
    assert tabular_schema(tmp_path / "g.csv") == [("a", "int64"), ("b", "string")]


def test_large_csv_reads_only_a_sample(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 0.5}" for i in range(200_000))
    (tmp_path / "big.csv").write_text("n,half\n" + rows + "\nlast,row\n")
    assert tabular_schema(tmp_path / "big.csv") == [("n", "int64"), ("half", "double")]


def test_unknown_format_is_none_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x00\x01")
    with caplog.at_level(logging.WARNING, logger="provlink.capturing.file_schema"):
        assert tabular_schema(tmp_path / "model.bin") is None
    assert caplog.records == []


def test_corrupt_or_missing_file_is_none_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with caplog.at_level(logging.WARNING, logger="provlink.capturing.file_schema"):
        assert tabular_schema(tmp_path / "bad.parquet") is None
        assert tabular_schema(tmp_path / "missing.csv") is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "bad.parquet" in messages[0] and "missing.csv" in messages[1]
    assert "FileNotFoundError" in messages[1]
