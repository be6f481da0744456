"""The README's configuration reference is the one rendered from ``ProvlinkConfig``'s fields.

A setting added, renamed or re-described in ``src/provlink/config.py`` fails this test until
the README is regenerated: ``UPDATE_README=1 pytest tests/unit/test_readme_config.py``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from provlink.config import ProvlinkConfig, reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- config-reference:start (generated; see tests/unit/test_readme_config.py) -->\n"
END = "<!-- config-reference:end -->"


def _split(text: str) -> tuple[str, str, str]:
    if START not in text or END not in text:
        pytest.fail(f"README.md lacks the configuration reference markers {START.strip()!r} "
                    f"and {END!r}; put them back around the settings table")
    head, rest = text.split(START, 1)
    table, tail = rest.split(END, 1)
    return head, table, tail


def test_readme_config_reference_is_generated_from_the_config() -> None:
    text = README.read_text(encoding="utf-8")
    head, table, tail = _split(text)
    expected = reference_markdown()
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(head + START + expected + END + tail, encoding="utf-8")
        table = expected
    assert table == expected, (
        "README.md's configuration reference differs from the settings in "
        "src/provlink/config.py; regenerate it with "
        "`UPDATE_README=1 pytest tests/unit/test_readme_config.py` and review `git diff README.md`")


def test_reference_has_one_row_per_setting_with_its_variable() -> None:
    rows = [line for line in reference_markdown().splitlines()[2:]]
    names = [f.name for f in dataclasses.fields(ProvlinkConfig)]
    assert len(rows) == len(names)
    for name, row in zip(names, rows, strict=True):
        assert row.startswith(f"| `{name}` | `PROVLINK_{name.upper()}` |")
        assert row.count("|") == 5, f"a description holds a | and breaks the table: {row}"
