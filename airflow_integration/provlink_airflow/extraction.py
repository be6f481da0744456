"""What a task instance read, wrote and was given: inputs, outputs and parameters.

Inputs and outputs, from every source Airflow itself knows:

- the operator's own OpenLineage methods (``get_openlineage_facets_on_start/complete``),
  the provider's extractors, the hook-lineage collector and inlets/outlets/Assets, all
  through the provider's ``ExtractorManager`` so provlink finds at least what the provider
  finds on the same task;
- for BashOperator, the files named in the rendered ``bash_command``, stat-snapshotted
  before and after the command (a subprocess's I/O raises no audit event here);
- files read and written by Python code in the task process, which the core's file capture
  records for every capture point (not this module's job).

Parameters are snapshotted when the task starts, before ``execute`` can mutate them, one
parameter per key, nested mappings dotted (:func:`provlink.events.parameters.flatten`):
``dag_run.conf`` (``conf.<key>``), the DAG's ``params`` (``params.<key>``), a Python
operator's ``op_kwargs`` (``op_kwargs.C``) and ``op_args`` (``op_args.0``), and the other
rendered template fields (``template.<field>``, e.g. ``template.bash_command``). Values are
redacted with Airflow's secrets masker and provlink's key patterns *before* they are split
and serialised (nested secrets would otherwise hide inside a JSON string); the whole set is
bounded by ``parameters_max_chars`` here, and each value is cut at ``parameter_max_chars``
by the core only after its redaction saw the whole text.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from provlink.capturing.command_files import Stat, diff_snapshots, paths_in_command, snapshot
from provlink.capturing.file_capture import FileAccesses
from provlink.events.model import DatasetRef
from provlink.events.parameters import flatten
from provlink.events.redact import MASK, Redactor
from provlink_airflow._compat import extractor_manager, masked_secrets, secrets_maskers

log = logging.getLogger(__name__)

BASH_OPERATORS = frozenset({"BashOperator", "_BashDecoratedOperator"})


# -- inputs and outputs --------------------------------------------------------------------
class OperatorLineage:
    """Runs the provider's extractor manager (built once per process: it loads extractors)."""

    def __init__(self) -> None:
        self._manager: Any = None

    def extract(self, dag_run: Any, task: Any, ti: Any, state: str
                ) -> tuple[list[DatasetRef], list[DatasetRef], dict[str, Any], dict[str, Any]]:
        """(inputs, outputs, run facets, job facets) the operator and Airflow report."""
        from airflow.utils.state import TaskInstanceState

        if self._manager is None:
            self._manager = extractor_manager()
        found = self._manager.extract_metadata(dagrun=dag_run, task=task, task_instance=ti,
                                               task_instance_state=TaskInstanceState(state))
        if found is None:
            return [], [], {}, {}
        return ([_dataset(d) for d in found.inputs], [_dataset(d) for d in found.outputs],
                dict(found.run_facets or {}), dict(found.job_facets or {}))


def _dataset(dataset: Any) -> DatasetRef:
    return DatasetRef(namespace=dataset.namespace, name=dataset.name,
                      facets=dict(getattr(dataset, "facets", None) or {}))


class BashFiles:
    """Files named in a BashOperator's rendered command, compared before and after it runs."""

    def __init__(self, command: str, cwd: str | None) -> None:
        # Without ``cwd`` Airflow runs the command in a fresh temporary directory we cannot
        # know yet, so relative names are resolved somewhere nothing exists and drop out.
        self.paths = paths_in_command(command, Path(cwd) if cwd else Path(os.devnull))
        self.before: dict[Path, Stat] = snapshot(self.paths)

    def accesses(self) -> FileAccesses:
        return diff_snapshots(self.before, snapshot(self.paths))


def bash_files(task: Any) -> BashFiles | None:
    command = getattr(task, "bash_command", None)
    if type(task).__name__ not in BASH_OPERATORS or not isinstance(command, str):
        return None
    return BashFiles(command, getattr(task, "cwd", None))


# -- parameters ----------------------------------------------------------------------------
# Template fields of Python operators that are the callable's own arguments: named by
# themselves (``op_kwargs.C``), not as ``template.op_kwargs``.
ARGUMENT_FIELDS = frozenset({"op_args", "op_kwargs"})


def parameters(context: Any, task: Any, redactor: Redactor, *, max_chars: int,
               total_chars: int) -> dict[str, str]:
    """The task's parameters, one per key, as redacted, capped JSON text: ``conf.*``,
    ``params.*``, ``op_kwargs.*``, ``op_args.*``, ``template.*``."""
    groups: list[tuple[str, Any, bool]] = []
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    groups += [(f"conf.{k}", conf[k], False) for k in sorted(conf, key=str)]
    params = context.get("params") or {}
    groups += [(f"params.{k}", params[k], False) for k in sorted(params.keys(), key=str)]
    for field in getattr(task, "template_fields", ()) or ():
        value = getattr(task, field, None)
        if value not in (None, "", [], {}, ()):
            name = field if field in ARGUMENT_FIELDS else f"template.{field}"
            groups.append((name, value, field == "op_args"))
    raw = [pair for name, value, positional in groups
           for pair in flatten(name, scrub(value, name.rpartition(".")[2], redactor),
                               index_lists=positional)]
    out: dict[str, str] = {}
    used = 0
    for key, value in raw:
        text = _json(value)
        size = min(len(text), max_chars)  # what the core keeps of it after redaction
        if used + size > total_chars:
            out["provlink.parameters_truncated"] = f"{len(raw) - len(out)} parameters omitted"
            break
        out[key] = text
        used += size
    return out


def scrub(value: Any, name: str | None, redactor: Redactor, depth: int = 0) -> Any:
    """Mask what Airflow's masker knows (secret values, sensitive Variable/Connection field
    names) and what provlink's key patterns match, at any depth of a nested value."""
    for masker in secrets_maskers():
        value = masker.redact(value, name, max_depth=32)
    return _mask_keys(value, redactor, depth)


def _mask_keys(value: Any, redactor: Redactor, depth: int) -> Any:
    if depth > 32:
        return value
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and redactor.is_secret_key(k) and v not in (None, "")
                else _mask_keys(v, redactor, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_keys(v, redactor, depth + 1) for v in value]
    return value


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=repr, sort_keys=True)
    except (TypeError, ValueError):  # e.g. non-string dict keys of mixed types
        return repr(value)


def sync_secrets(redactor: Redactor) -> None:
    """Teach provlink's redactor every secret Airflow's masker has learnt in this process
    (connection passwords, sensitive Variables, ``mask_secret`` calls), so they are masked
    anywhere in an event, error messages and commands included."""
    redactor.add_secrets(masked_secrets())
