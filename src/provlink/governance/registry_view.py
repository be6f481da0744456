"""What governance reads from the model registry: aliases, model-version and run records.

Governance stays importable without MLflow: :class:`NoRegistry` answers "unknown" and
:class:`MlflowRegistry` imports MLflow only when built (the CLI builds it from
``--tracking-uri`` / ``MLFLOW_TRACKING_URI``). Tests and other registries implement the
same small protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from provlink.errors import LineageQueryError


class RegistryView(Protocol):
    """Read-only registry questions governance asks; every answer may be empty."""

    tracking_uri: str | None

    def aliases(self, name: str) -> Mapping[str, str]:
        """alias → version number held now."""
        ...

    def model_version(self, name: str, version: str) -> Mapping[str, Any] | None: ...

    def mlflow_run(self, run_id: str) -> Mapping[str, Any] | None: ...


class NoRegistry:
    """No registry configured: aliases and records are unknown (and reported as such)."""

    tracking_uri: str | None = None

    def aliases(self, name: str) -> Mapping[str, str]:
        return {}

    def model_version(self, name: str, version: str) -> Mapping[str, Any] | None:
        return None

    def mlflow_run(self, run_id: str) -> Mapping[str, Any] | None:
        return None


class MlflowRegistry:
    """MLflow's registry through its public client (any tracking store MLflow supports)."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise LineageQueryError("reading the model registry needs MLflow: "
                                    "pip install 'provlink[mlflow]'") from exc
        self.tracking_uri: str | None = tracking_uri or mlflow.get_tracking_uri()
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        self._aliases: dict[str, dict[str, str]] = {}

    def aliases(self, name: str) -> Mapping[str, str]:
        if name not in self._aliases:
            from mlflow.exceptions import MlflowException

            try:
                model = self._client.get_registered_model(name)
            except MlflowException:
                self._aliases[name] = {}
            else:
                self._aliases[name] = {a: str(v) for a, v in (model.aliases or {}).items()}
        return self._aliases[name]

    def model_version(self, name: str, version: str) -> Mapping[str, Any] | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self._client.get_model_version(name, version)
        except MlflowException:
            return None
        return {"name": found.name, "version": str(found.version),
                "creationTimestamp": found.creation_timestamp,
                "lastUpdatedTimestamp": found.last_updated_timestamp,
                "userId": found.user_id, "currentStage": found.current_stage,
                "description": found.description, "source": found.source,
                "runId": found.run_id, "status": found.status,
                "tags": dict(found.tags), "aliases": list(found.aliases or []),
                "modelId": getattr(found, "model_id", None)}

    def mlflow_run(self, run_id: str) -> Mapping[str, Any] | None:
        from mlflow.exceptions import MlflowException

        try:
            run = self._client.get_run(run_id)
        except MlflowException:
            return None
        return {"info": dict(run.info), "params": dict(run.data.params),
                "metrics": dict(run.data.metrics), "tags": dict(run.data.tags)}

    def artifact_dir(self, name: str, version: str) -> str | None:
        """A local copy of the version's artifact files (downloaded when remote)."""
        from mlflow.artifacts import download_artifacts

        found = self.model_version(name, version)
        if not found:
            return None
        # the version's own artifact location, asked of this registry: a ``models:/`` URI
        # would be resolved against MLflow's default registry, not ``tracking_uri``
        location = self._client.get_model_version_download_uri(name, version)
        return str(download_artifacts(artifact_uri=location, tracking_uri=self.tracking_uri))
