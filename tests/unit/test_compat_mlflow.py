"""Every entry of provlink.mlflow._compat, against the installed MLflow."""

from __future__ import annotations

import importlib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

mlflow = pytest.importorskip("mlflow")

from provlink.mlflow import _compat  # noqa: E402


def test_installed_mlflow_is_the_checked_range() -> None:
    assert version("mlflow") in SpecifierSet(_compat.CHECKED_VERSIONS)


@pytest.fixture
def registry(tmp_path: Path) -> tuple[str, str]:
    """A SQLite tracking store with one registered model version (``compat_model`` 1)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifacts = tmp_path / "model"
    artifacts.mkdir()
    (artifacts / "MLmodel").write_text("flavors: {}\n")
    client.create_registered_model("compat_model")
    client.create_model_version("compat_model", str(artifacts))
    return uri, str(artifacts)


def test_registry_client_writes_version_tags(registry: tuple[str, str]) -> None:
    uri, _ = registry
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    writer = _compat.registry_client(client)
    assert writer is not client  # the private registry client is still there
    writer.set_model_version_tag("compat_model", "1", "provlink.compat", "yes")
    assert client.get_model_version("compat_model", "1").tags["provlink.compat"] == "yes"


def test_on_models_uri_reports_what_a_models_uri_resolved_to(
        registry: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    uri, _ = registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    seen: list[_compat.ModelsUri] = []
    _compat.on_models_uri(seen.append)
    _compat.on_models_uri(seen.append)  # once per callback, however often installed
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    ModelsArtifactRepository("models:/compat_model/1")  # as a flavor's load_model does
    ModelsArtifactRepository("models:/compat_model/1", registry_uri=uri)
    assert [(s.artifact_uri, s.name, s.version) for s in seen] == [
        ("models:/compat_model/1", "compat_model", "1")] * 2
    assert [s.registry_uri for s in seen] == [None, uri]  # None: the caller falls back


def test_reset_process_globals_forgets_set_tracking_uri(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in _compat._PROCESS_GLOBALS:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'set.db'}"
    mlflow.set_tracking_uri(uri)
    assert mlflow.get_tracking_uri() == uri
    _compat.reset_process_globals()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set_tracking_uri exports it
    assert mlflow.get_tracking_uri() != uri
    for module, name in _compat._PROCESS_GLOBALS:
        assert getattr(importlib.import_module(module), name) is None
