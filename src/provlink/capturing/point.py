"""Capture points: the public API for any Python code, and the machinery adapters share.

A capture point wraps one unit of work (a script, a notebook cell, a task body, an asset
step). It emits START when it begins and COMPLETE or FAIL when it ends, with the inputs,
outputs, parameters, MLflow runs, code version and environment gathered in between.

Failures of capture itself are logged and counted, never raised into the user's code;
exceptions from the user's code propagate unchanged after the FAIL event is emitted.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import importlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import wrapt
from openlineage.client.uuid import generate_new_uuid

from provlink.capturing.actor import with_os_user
from provlink.capturing.datasets import file_dataset
from provlink.capturing.environment import probe_async
from provlink.capturing.file_lineage import EXTENSION as FILE_LINEAGE
from provlink.delivery.runtime import Runtime, get_runtime, record_failure
from provlink.events.model import (
    Actor,
    CaptureRecord,
    CodeVersion,
    DatasetRef,
    EnvironmentInfo,
    ErrorInfo,
    EventType,
    JobKind,
    JobRef,
    MlflowRunLink,
    ParentRef,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

_current: contextvars.ContextVar[CapturePoint | None] = contextvars.ContextVar(
    "provlink_capture_point", default=None)
_active: list[CapturePoint] = []  # process-wide, for threads the task starts itself
_active_lock = threading.Lock()


class Extension(Protocol):
    """Something that contributes to every capture point (file capture, MLflow links).

    An extension may also define ``after_emit(point)``, called once the terminal event is
    spooled: ``point.ledger_entry``/``point.ledger_leaf`` then hold its ledger leaf hash and
    index and ``point.checkpoint`` the checkpoint covering it.
    """

    def on_start(self, point: CapturePoint) -> None: ...

    def on_finish(self, point: CapturePoint) -> None: ...


_extensions: list[Extension] = [FILE_LINEAGE]
# Extensions loaded only once their library is imported, so the core never imports it.
_LAZY_EXTENSIONS: tuple[tuple[str, str], ...] = (("mlflow", "provlink.mlflow.run_link"),)


def register_extension(extension: Extension) -> None:
    if extension not in _extensions:
        _extensions.append(extension)


def _extensions_now() -> list[Extension]:
    return list(_extensions)


def _library_loaded(module: str, _library: Any) -> None:
    """A lazily loaded library was imported: register its extension and start it on the
    capture points already running (a task that imports MLflow inside its body still has
    its registry calls and model loads recorded from then on)."""
    try:
        extension = getattr(importlib.import_module(module), "EXTENSION", None)
        if extension is None or extension in _extensions:
            return
        register_extension(extension)
        with _active_lock:
            running = [p for p in _active if extension not in p._extensions]
        for point in running:
            point._extensions.append(extension)
            point._guard(extension.on_start, point)
    except Exception as error:  # noqa: BLE001 - an import in user code must not fail
        record_failure(f"extension {module}", error)


for _trigger, _module in _LAZY_EXTENSIONS:
    # wrapt's post-import hooks: called at once when the library is already imported
    wrapt.register_post_import_hook(functools.partial(_library_loaded, _module), _trigger)


def current() -> CapturePoint | None:
    """The innermost active capture point of this context, or of this process."""
    point = _current.get()
    if point is not None:
        return point
    with _active_lock:
        return _active[-1] if _active else None


class CapturePoint:
    """One unit of work being captured. Use :func:`capture` or start()/finish()."""

    def __init__(self, job_name: str, *, namespace: str | None = None, run_id: str | None = None,
                 parent: ParentRef | None = None, kind: JobKind | None = None,
                 parameters: Mapping[str, Any] | None = None, code_dir: Path | str | None = None,
                 orchestrator: str = "python", orchestrator_version: str | None = None,
                 nominal_start: datetime | None = None, nominal_end: datetime | None = None,
                 tags: Mapping[str, str] | None = None, capture_files: bool | None = None,
                 emit_start: bool = True, actor: Actor | None = None,
                 runtime: Runtime | None = None) -> None:
        self.runtime = runtime or get_runtime()
        cfg = self.runtime.config
        self.job = JobRef(namespace=namespace or cfg.namespace, name=job_name)
        self.run_id = run_id or str(generate_new_uuid())
        self.parent = parent
        self.kind = kind or JobKind()
        self.parameters: dict[str, Any] = dict(parameters or {})
        self.code_dir = Path(code_dir) if code_dir else _default_code_dir()
        self.orchestrator = orchestrator
        self.orchestrator_version = orchestrator_version
        self.nominal_start = nominal_start
        self.nominal_end = nominal_end
        self.tags: dict[str, str] = dict(tags or {})
        self.actor = with_os_user(actor)  # who ran it: the adapter's knowledge + the OS user
        self.capture_files = cfg.capture_files if capture_files is None else capture_files
        self.emit_start = emit_start
        self.inputs: dict[tuple[str, str], DatasetRef] = {}
        self.outputs: dict[tuple[str, str], DatasetRef] = {}
        self.mlflow_runs: dict[str, MlflowRunLink] = {}
        self.run_facets: dict[str, Any] = {}
        self.job_facets: dict[str, Any] = {}
        self.started_at: datetime | None = None
        self.ledger_entry: str | None = None  # hex leaf hash of the last event emitted
        self.ledger_leaf: int | None = None  # its leaf index
        self.checkpoint: Any = None  # StoredCheckpoint covering the terminal event
        self.finished = False
        self.state: dict[str, Any] = {}  # extensions keep their per-point state here
        self._token: contextvars.Token[CapturePoint | None] | None = None
        self._probe: Future[tuple[CodeVersion | None, EnvironmentInfo]] | None = None
        self._extensions: list[Extension] = [FILE_LINEAGE]

    # -- what user code and adapters add -----------------------------------------------
    def add_input(self, dataset: DatasetRef | str | Path, **fields: Any) -> DatasetRef | None:
        return self._guard(self._add, self.inputs, dataset, fields)

    def add_output(self, dataset: DatasetRef | str | Path, **fields: Any) -> DatasetRef | None:
        return self._guard(self._add, self.outputs, dataset, fields)

    def add_parameters(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        self.parameters.update(values or {})
        self.parameters.update(more)

    def add_mlflow_run(self, link: MlflowRunLink) -> None:
        self.mlflow_runs[link.run_id] = link

    def _add(self, into: dict[tuple[str, str], DatasetRef], dataset: DatasetRef | str | Path,
             fields: Mapping[str, Any]) -> DatasetRef:
        if isinstance(dataset, DatasetRef):
            ref = dataset
        elif isinstance(dataset, Path) or (isinstance(dataset, str) and "namespace" not in fields):
            ref = file_dataset(Path(dataset), max_bytes=self.runtime.config.digest_max_bytes)
        else:
            ref = DatasetRef(name=str(dataset), **fields)
            fields = {}
        if fields:
            ref = DatasetRef(**{**_fields_of(ref), **fields})
        into[ref.key] = ref
        return ref

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> CapturePoint:
        """Become the current capture point and emit START."""
        self.started_at = datetime.now(UTC)
        self._token = _current.set(self)
        with _active_lock:
            _active.append(self)
        if self.runtime.config.disabled:  # PROVLINK_DISABLED: the code runs, nothing is captured
            return self
        self._probe = self._guard(probe_async, self.code_dir, self.orchestrator,
                                  self.orchestrator_version, self.runtime.config.home)
        self._extensions = self._guard(_extensions_now) or []
        for ext in self._extensions:
            self._guard(ext.on_start, self)
        if self.emit_start:
            self._guard(self._emit, EventType.START, None, with_environment=False)
        return self

    def finish(self, error: BaseException | str | None = None, *,
               event_type: EventType | None = None) -> dict[str, Any] | None:
        """Emit COMPLETE, or FAIL when ``error`` is given; returns the event (or None)."""
        if self.finished:
            return None
        self.finished = True
        if self.runtime.config.disabled:
            self._leave()
            return None
        late = [e for e in self._guard(_extensions_now) or [] if e not in self._extensions]
        extensions = [*self._extensions, *late]
        for ext in extensions:
            self._guard(ext.on_finish, self)
        self._leave()
        kind = event_type or (EventType.FAIL if error is not None else EventType.COMPLETE)
        event = self._guard(self._emit, kind, _error_info(error), with_environment=True)
        for ext in extensions:
            if hasattr(ext, "after_emit"):
                self._guard(ext.after_emit, self)
        return event

    def _leave(self) -> None:
        with _active_lock:
            if self in _active:
                _active.remove(self)
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # finished from another context (e.g. Airflow listener thread)
                _current.set(None)
            self._token = None

    def __enter__(self) -> CapturePoint:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    # -- building the record -----------------------------------------------------------
    def record(self, event_type: EventType, error: ErrorInfo | None = None, *,
               with_environment: bool = True) -> CaptureRecord:
        code, env = self._probed() if with_environment else (None, None)
        return CaptureRecord(
            job=self.job, run_id=self.run_id, event_type=event_type,
            event_time=datetime.now(UTC), parent=self.parent, kind=self.kind,
            inputs=tuple(self.inputs.values()), outputs=tuple(self.outputs.values()),
            parameters=dict(self.parameters), mlflow_runs=tuple(self.mlflow_runs.values()),
            code=code, environment=env, error=error,
            nominal_start=self.nominal_start, nominal_end=self.nominal_end, tags=dict(self.tags),
            actor=self.actor, run_facets=dict(self.run_facets), job_facets=dict(self.job_facets),
        )

    def _probed(self) -> tuple[CodeVersion | None, EnvironmentInfo | None]:
        if self._probe is None:
            return None, None
        try:
            code, env = self._probe.result(timeout=10)
            image = self.runtime.config.container_image
            return code, (dataclasses.replace(env, container_image=image) if image else env)
        except Exception:  # noqa: BLE001 - an unknown environment is not a failed task
            log.warning("provlink: code/environment probe failed", exc_info=True)
            return None, None

    def _emit(self, event_type: EventType, error: ErrorInfo | None, *,
              with_environment: bool) -> dict[str, Any]:
        record = self.record(event_type, error, with_environment=with_environment)
        emitted = self.runtime.emit_with_entry(record)
        if emitted.appended is not None:
            self.ledger_entry = emitted.appended.entry_hash
            self.ledger_leaf = emitted.appended.leaf_index
        if emitted.checkpoint is not None:
            self.checkpoint = emitted.checkpoint
        return emitted.event

    def _guard(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R | None:
        """Run a capture step; log and count its failure instead of raising."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # lineage must never fail the user's task
            step = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
            log.warning("provlink: capture step %s failed for %s", step, self.job.name,
                        exc_info=True)
            self.runtime.record_failure(f"{self.job.name}: {step}", exc)
            return None


def _fields_of(ref: DatasetRef) -> dict[str, Any]:
    return {name: getattr(ref, name) for name in ref.__dataclass_fields__}


def _error_info(error: BaseException | str | None) -> ErrorInfo | None:
    if error is None:
        return None
    if isinstance(error, str):
        return ErrorInfo(message=error)
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return ErrorInfo(message=f"{type(error).__name__}: {error}", stack_trace=trace)


def _default_code_dir() -> Path | None:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return _code_dir_of(main, os.getcwd())


@functools.lru_cache(maxsize=64)
def _code_dir_of(main: str | None, cwd: str) -> Path:
    return Path(main).resolve().parent if main else Path(cwd)


@contextmanager
def capture(job_name: str, **options: Any) -> Iterator[CapturePoint]:
    """Make a capture point around a block of code.

    >>> with capture("nightly_features", parameters={"window": 7}) as cp:
    ...     cp.add_input("raw.csv")
    """
    point = _safe_point(job_name, options)
    if point is None:
        # capture is broken: run the user's code anyway, with a stand-in that drops calls
        yield cast(CapturePoint, _DetachedPoint(job_name))
        return
    point.start()
    try:
        yield point
    except BaseException as exc:
        point.finish(exc)
        raise
    point.finish()


def _safe_point(job_name: str, options: Mapping[str, Any]) -> CapturePoint | None:
    try:
        return CapturePoint(job_name, **options)
    except TypeError:
        raise  # a wrong keyword is a programming error the caller must see
    except Exception as exc:  # noqa: BLE001
        log.warning("provlink: cannot start capture point %s", job_name, exc_info=True)
        record_failure(f"{job_name}: start", exc)
        return None


class _DetachedPoint:
    """Stands in when provlink itself cannot start; accepts and drops every call."""

    def __init__(self, job_name: str) -> None:
        self.job_name = job_name

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def captured(func: Callable[P, R] | None = None, *, job_name: str | None = None,
             **options: Any) -> Any:
    """Decorator form of :func:`capture`; the job name defaults to the function's qualname."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = job_name or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with capture(name, **options):
                return fn(*args, **kwargs)

        return wrapper

    return decorate(func) if func is not None else decorate


# -- module-level helpers: add to whatever capture point is current ------------------------
def add_input(dataset: DatasetRef | str | Path, **fields: Any) -> DatasetRef | None:
    """Declare an input the automatic capture cannot see (a table, an API)."""
    point = current()
    if point is None:
        _no_point("add_input")
        return None
    return point.add_input(dataset, **fields)


def add_output(dataset: DatasetRef | str | Path, **fields: Any) -> DatasetRef | None:
    """Declare an output the automatic capture cannot see."""
    point = current()
    if point is None:
        _no_point("add_output")
        return None
    return point.add_output(dataset, **fields)


def add_parameters(values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """Record parameters on the current capture point."""
    point = current()
    if point:
        point.add_parameters(values, **more)
    else:
        _no_point("add_parameters")


def _no_point(what: str) -> None:
    log.debug("provlink.%s called outside any capture point; ignored", what)
