"""The demo ML pipeline's steps as plain functions, shared by the Airflow and Dagster examples.

Nothing here knows about an orchestrator or about provlink: the steps read and write local
files and talk to MLflow exactly as a team's code would. Lineage comes from the integrations.

    raw CSV (scikit-learn's wine data) -> features (Parquet) -> train (MLflow run,
    registered model, alias ``champion``) -> score (loads ``models:/<name>@champion``)
    -> predictions (Parquet)

Paths live under :func:`data_dir`; MLflow uses a SQLite tracking store in the same place, so
the demo needs no server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "wine_classifier"
ALIAS = "champion"
LABEL = "target"


def data_dir() -> Path:
    """``DEMO_DATA_DIR``, else ``~/provlink-demo``.

    Not under ``PROVLINK_HOME``: file capture ignores provlink's own directory, so data
    there would never show up as inputs and outputs.
    """
    root = Path(os.environ.get("DEMO_DATA_DIR") or Path.home() / "provlink-demo")
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def tracking_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite tracking store under :func:`data_dir`."""
    default = f"sqlite:///{(root or data_dir()) / 'mlflow.db'}"
    return os.environ.get("MLFLOW_TRACKING_URI") or default


@dataclass(frozen=True, slots=True, kw_only=True)
class Paths:
    """Where each step reads and writes; one place so both examples agree."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw" / "wine.csv"

    @property
    def features(self) -> Path:
        return self.root / "features" / "wine_features.parquet"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions" / "wine_predictions.parquet"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlartifacts"


def write_raw(paths: Paths) -> Path:
    """Write scikit-learn's bundled wine data set as a CSV: the pipeline's source data."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    paths.raw.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(paths.raw, index=False)
    return paths.raw


def build_features(paths: Paths) -> Path:
    """Standardise every measurement column; keep the label as is."""
    import pandas as pd

    frame = pd.read_csv(paths.raw)
    columns = [c for c in frame.columns if c != LABEL]
    scaled = (frame[columns] - frame[columns].mean()) / frame[columns].std(ddof=0)
    scaled[LABEL] = frame[LABEL]
    paths.features.parent.mkdir(parents=True, exist_ok=True)
    scaled.to_parquet(paths.features, index=False)
    return paths.features


def train(paths: Paths, *, uri: str, model_name: str = MODEL_NAME,
          c: float = 1.0, max_iter: int = 500, seed: int = 7) -> dict[str, Any]:
    """Fit a logistic regression, log it to MLflow, register it and point the alias at it."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    frame = pd.read_parquet(paths.features)
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(model_name)
    experiment_id = (experiment.experiment_id if experiment else mlflow.create_experiment(
        model_name, artifact_location=paths.artifacts.as_uri()))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        model = LogisticRegression(C=c, max_iter=max_iter).fit(x_train, y_train)
        mlflow.log_params({"C": c, "max_iter": max_iter, "seed": seed})
        mlflow.log_metric("accuracy", float(model.score(x_test, y_test)))
        info = mlflow.sklearn.log_model(model, name="model", input_example=x_train.head(3),
                                        registered_model_name=model_name)
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri=uri).set_registered_model_alias(model_name, ALIAS, version)
    return {"run_id": run.info.run_id, "model_name": model_name, "version": version}


def score(paths: Paths, *, uri: str, model_name: str = MODEL_NAME) -> Path:
    """Load the ``champion`` model from the registry and predict every row of the features."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{model_name}@{ALIAS}")
    frame = pd.read_parquet(paths.features)
    out = pd.DataFrame({"prediction": model.predict(frame.drop(columns=[LABEL]))})
    out[LABEL] = frame[LABEL]
    paths.predictions.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(paths.predictions, index=False)
    return paths.predictions
