"""Every MLflow internal provlink reaches, in one place: the one module to adapt on upgrade.

Each entry names what it reaches and the MLflow versions it was checked against;
``tests/unit/test_compat_mlflow.py`` exercises every one against the installed MLflow, so an
upgrade that moves one fails CI instead of a user's run. MLflow is imported inside each
function (``src/provlink`` never imports it at module top).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHECKED_VERSIONS = ">=3.17,<4"  # MLflow, as pinned in pyproject.toml
_PATCHED = "_provlink_patched"


def registry_client(client: MlflowClient) -> Any:
    """``MlflowClient._get_registry_client()`` (MLflow 3.17): tag writes that skip the public
    ``set_*_tag``'s fetch of the whole registered model; the client itself if it is gone."""
    getter = getattr(client, "_get_registry_client", None)
    return getter() if callable(getter) else client


@dataclass(frozen=True, slots=True)
class ModelsUri:
    """What a ``ModelsArtifactRepository`` resolved a ``models:/`` URI to."""

    artifact_uri: str
    name: str | None
    version: str | None
    registry_uri: str | None


_models_uri_callbacks: list[Callable[[ModelsUri], None]] = []


def on_models_uri(callback: Callable[[ModelsUri], None]) -> None:
    """Wrap ``ModelsArtifactRepository.__init__`` once per process (MLflow 3.17) and call
    ``callback`` (once per distinct callback) with its ``model_name``/``model_version``/
    ``registry_uri`` attributes: every flavor's ``load_model`` resolves registry URIs there
    and MLflow has no hook. A callback must not raise (it runs inside ``load_model``)."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository as Repo

    if callback not in _models_uri_callbacks:
        _models_uri_callbacks.append(callback)
    if getattr(Repo.__init__, _PATCHED, False):
        return
    original = Repo.__init__

    @functools.wraps(original)
    def __init__(self: Any, artifact_uri: str, *args: Any, **kwargs: Any) -> None:
        original(self, artifact_uri, *args, **kwargs)
        version = getattr(self, "model_version", None)
        resolved = ModelsUri(artifact_uri=str(artifact_uri),
                             name=getattr(self, "model_name", None),
                             version=None if version is None else str(version),
                             registry_uri=getattr(self, "registry_uri", None))
        for notify in list(_models_uri_callbacks):
            notify(resolved)

    setattr(__init__, _PATCHED, True)
    Repo.__init__ = __init__  # type: ignore[method-assign]  # the patch is the point


def on_models_download(callback: Callable[[str], None]) -> None:
    """Wrap ``ModelsArtifactRepository.download_artifacts`` once per process (MLflow 3.17)
    and call ``callback`` with the local path it returns: where a load put the version's
    files (a copy, or with a local store the artifact directory itself, into which MLflow
    then writes ``registered_model_meta``)."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository as Repo

    if getattr(Repo.download_artifacts, _PATCHED, False):
        return
    original: Callable[..., Any] = Repo.download_artifacts

    @functools.wraps(original)
    def download_artifacts(self: Any, *args: Any, **kwargs: Any) -> Any:
        local = original(self, *args, **kwargs)
        if isinstance(local, str):
            callback(local)
        return local

    setattr(download_artifacts, _PATCHED, True)
    Repo.download_artifacts = download_artifacts  # type: ignore[method-assign]


# (module, global) MLflow keeps per process: set_tracking_uri / set_registry_uri /
# set_experiment have no public reset (MLflow 3.17).
_PROCESS_GLOBALS = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
    ("mlflow.tracking.fluent", "_active_experiment_id"),
)


def reset_process_globals() -> None:
    """Forget the tracking URI, registry URI and experiment set in this process (already
    imported modules only: this never imports MLflow)."""
    for module, name in _PROCESS_GLOBALS:
        if module in sys.modules:
            setattr(sys.modules[module], name, None)


# MlflowClient methods that change the model registry (MLflow 3.17). ``_create_model_version``
# is private: both ``create_model_version`` and ``mlflow.register_model`` (so every
# ``log_model(registered_model_name=...)``) go through it.
REGISTRY_CALLS = ("_create_model_version", "set_model_version_tag", "delete_model_version_tag",
                  "set_registered_model_alias", "delete_registered_model_alias")
After = Callable[[Any], None]
_registry_callbacks: list[Callable[[Any, str, dict[str, Any]], After | None]] = []


def on_registry_call(callback: Callable[[Any, str, dict[str, Any]], After | None]) -> None:
    """Wrap :data:`REGISTRY_CALLS` on ``MlflowClient`` once per process: before each call,
    ``callback(client, method, bound arguments)`` may return a function, which is called
    with the result once the call succeeded (so it can read the registry before the change,
    e.g. the version an alias pointed to). Neither may raise (they run inside the user's
    registry call)."""
    import inspect

    from mlflow import MlflowClient

    if callback not in _registry_callbacks:
        _registry_callbacks.append(callback)
    for method in REGISTRY_CALLS:
        original = getattr(MlflowClient, method, None)
        if original is None or getattr(original, _PATCHED, False):
            continue
        _wrap(MlflowClient, method, original, inspect.signature(original))


def _wrap(owner: Any, method: str, original: Any, signature: Any) -> None:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self", None)
        afters = [after for notify in list(_registry_callbacks)
                  if (after := notify(self, method, arguments)) is not None]
        result = original(self, *args, **kwargs)
        for after in afters:
            after(result)
        return result

    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _PATCHED, True)
    setattr(owner, method, wrapper)
