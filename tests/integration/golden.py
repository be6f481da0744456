"""Golden events: what a real run emitted, normalised, compared with JSON checked in under
``tests/integration/golden/`` (as the OpenLineage Airflow provider's system tests do).

Normalised, because they differ between runs or machines: times (and today's dates inside
text), UUIDs and MLflow's hex ids (numbered by first appearance, so links such as a step's
parent run stay visible), the run's temporary folders, the host name, the OS user (and
MLflow's ``mlflow.user``), package versions and digests, git commits and remotes, epoch
timestamps, the ledger's hashes and proofs (its tree sizes are kept), and the content digests
and sizes of files whose bytes depend on library versions, paths or the clock (Parquet,
pickles, MLflow's MLmodel). The
digests of the shipped input data (CSV) are kept: they are stable, and a change to them is
news. Events are ordered by job, then by event type, so arrival order does not matter.

A deliberate change to what is emitted updates the goldens with one command::

    make goldens          # = UPDATE_GOLDENS=1 pytest tests/integration -k golden

(``UPDATE_GOLDENS``, not ``PROVLINK_*``: provlink refuses unknown settings under its prefix.)
"""

from __future__ import annotations

import json
import os
import re
import socket
import sysconfig
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"
UPDATE_HINT = (
    "If the change is deliberate, update the goldens and commit them:\n"
    "    make goldens    (= UPDATE_GOLDENS=1 pytest tests/integration -k golden)\n"
    "then review `git diff tests/integration/golden/`."
)
STABLE_CONTENT = (".csv",)  # shipped input data: content digests are kept
_EVENT_ORDER = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "FAIL": 3, "ABORT": 4, "OTHER": 5}

_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.IGNORECASE)
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")  # MLflow run ids
_COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
_DIGEST = re.compile(r"^((?:fingerprint-)?sha256(?:-tree)?):[0-9a-f]{64}$")
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_DATE = re.compile(r"\b(20\d{2})-(\d{2})-(\d{2})\b")
_VOLATILE_KEYS = {  # facet fields that describe the machine, not the pipeline
    "pythonVersion", "platform", "host", "containerImage", "packagesDigest", "packages",
    "openlineageAdapterVersion", "dirty", "branch",
    "runName",  # MLflow's random run names
    "osUser",  # the account the tests run as
}
_CLONE_KEYS = {"repoUrl"}  # the checkout's remote: absent in one clone, a path in another


class Normaliser:
    """Rewrites one run's events into their run-independent form."""

    def __init__(self, paths: dict[str, str]) -> None:
        # installed packages' folder: the data sets libraries ship are inputs
        paths = {sysconfig.get_paths()["purelib"]: "<site-packages>", **paths}
        # longest first, so a folder inside another is replaced by its own name
        self._paths = sorted(((str(Path(p).resolve()), name) for p, name in paths.items()),
                             key=lambda item: -len(item[0]))
        self._paths += [(p, name) for p, name in paths.items() if str(Path(p).resolve()) != p]
        self._ids: dict[str, str] = {}
        self._versions = _installed_versions()
        self._host = socket.gethostname()

    def events(self, events: list[dict[str, Any]]) -> list[Any]:
        ordered = sorted(events, key=lambda e: (e.get("job", {}).get("name", ""),
                                                _EVENT_ORDER.get(e.get("eventType", ""), 9)))
        return [_sorted_datasets(self._value(event, ())) for event in ordered]

    def _value(self, value: Any, path: tuple[str, ...]) -> Any:
        key = path[-1] if path else ""
        if key in _VOLATILE_KEYS and "facets" in path:
            return f"<{key}>"
        if (key == "user" and "mlflow" in path) or (key == "actor"
                                                     and "mlflow_registry_action" in path):
            return "<user>"  # MLflow's mlflow.user: the account the tests run as
        if "provlink_ledger" in path[:-1] and not key.startswith("_") and key != "signed":
            return f"<{key}>"  # roots, proofs, sizes: depend on times, ids and other writers
        if key == "ledgerIndex":
            return "<ledgerIndex>"  # the sender's delivery entries interleave with the run's
        if "mlflow_model_version" in path and (
                key == "artifactDigest" or ("artifactManifest" in path and key in ("digest",
                                                                                  "sha256"))):
            return "<digest>"  # MLflow writes creation times into the model's files
        if "artifactManifest" in path and isinstance(value, dict) and (
                "files" in value or str(value.get("name", "")).endswith("MLmodel")):
            value = {**value, "size": "<size>"}  # ... and the run's artifact paths
        if isinstance(value, dict):
            return {k: self._value(v, (*path, k)) for k, v in value.items()
                    if not (k in _CLONE_KEYS and "facets" in path)}
        if isinstance(value, list):
            return [self._value(item, path) for item in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            if 1.5e9 <= value <= 2.5e9 or 1.5e12 <= value <= 2.5e12:
                return "<epoch>"
            return value
        if isinstance(value, str):
            return self._text(value)
        return value

    def _text(self, text: str) -> str:
        for prefix, name in self._paths:
            text = text.replace(prefix, name)
        text = text.replace(self._host, "<host>")
        text = re.sub(r"python3\.\d+", "python3.X", text)
        text = _ISO_TIME.sub("<time>", text)
        text = _DATE.sub(_recent_date, text)
        text = _UUID.sub(lambda m: self._id(m.group(0).lower(), "uuid"), text)
        text = _COMMIT.sub("<commit>", text)
        text = _HEX32.sub(lambda m: self._id(m.group(0), "hex"), text)
        for name, version in self._versions:
            text = re.sub(rf"(?<![\w.]){re.escape(version)}(?![\w])", f"<{name}-version>", text)
        return text

    def _id(self, value: str, kind: str) -> str:
        if value not in self._ids:
            self._ids[value] = f"<{kind}-{sum(1 for v in self._ids.values() if kind in v) + 1}>"
        return self._ids[value]


def _sorted_datasets(event: Any) -> Any:
    """Inputs and outputs in (namespace, name) order: the order within an event is not part of
    what is emitted (Dagster lists a step's inputs in no fixed order)."""
    if isinstance(event, dict):
        for side in ("inputs", "outputs"):
            if isinstance(event.get(side), list):
                event[side] = sorted(event[side], key=lambda d: (str(d.get("namespace")),
                                                                 str(d.get("name"))))
    return event


def normalise_digests(events: list[Any]) -> list[Any]:
    """Replace content digests and sizes of datasets that are not shipped input data."""
    for event in events:
        for side in ("inputs", "outputs"):
            for dataset in event.get(side) or []:
                if dataset.get("name", "").endswith(STABLE_CONTENT):
                    continue
                version = (dataset.get("facets") or {}).get("version")
                if isinstance(version, dict) and isinstance(version.get("datasetVersion"), str):
                    version["datasetVersion"] = _DIGEST.sub(r"\1:<digest>",
                                                            version["datasetVersion"])
                for group, facet in (("inputFacets", "inputStatistics"),
                                     ("outputFacets", "outputStatistics")):
                    stats = (dataset.get(group) or {}).get(facet)
                    if isinstance(stats, dict) and "size" in stats:
                        stats["size"] = "<size>"
    return events


def _recent_date(match: re.Match[str]) -> str:
    try:
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    today = datetime.now(UTC).date()
    return "<date>" if abs(day - today) <= timedelta(days=3) else match.group(0)


def _installed_versions() -> list[tuple[str, str]]:
    from importlib.metadata import PackageNotFoundError, version

    found: list[tuple[str, str]] = []
    for name in ("provlink", "apache-airflow", "dagster", "mlflow", "openlineage-python",
                 "pandas", "pyarrow", "scikit-learn"):
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return sorted(found, key=lambda item: -len(item[1]))  # 1.10.2 before 1.10


def first_differences(expected: Any, actual: Any, path: str = "$",
                      limit: int = 12) -> list[str]:
    """The first differing JSON paths, each with both values (shortened)."""
    out: list[str] = []

    def show(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= 160 else text[:157] + "..."

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in b:
                    out.append(f"{where}.{key}: missing now (golden: {show(a[key])})")
                elif key not in a:
                    out.append(f"{where}.{key}: new (now: {show(b[key])})")
                else:
                    walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            for index, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{index}]")
            if len(a) != len(b):
                out.append(f"{where}: {len(a)} items in the golden, {len(b)} now")
        elif a != b:
            out.append(f"{where}: golden {show(a)}, now {show(b)}")

    walk(expected, actual, path)
    return out


def assert_matches_golden(name: str, events: list[dict[str, Any]], paths: dict[str, str]) -> None:
    """Compare the normalised ``events`` with ``golden/<name>.json`` (or rewrite it)."""
    actual = normalise_digests(Normaliser(paths).events(events))
    target = GOLDEN / f"{name}.json"
    text = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return
    assert target.is_file(), f"no golden {target}.\n{UPDATE_HINT}"
    expected = json.loads(target.read_text(encoding="utf-8"))
    if expected != actual:
        found = first_differences(expected, actual)
        raise AssertionError(
            f"events differ from the golden {target.relative_to(GOLDEN.parents[2])}; "
            f"first differing JSON paths ($ = the list of events, ordered by job and type):\n  "
            + "\n  ".join(found) + f"\n{UPDATE_HINT}"
        )
