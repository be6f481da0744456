"""Pipelines built for known answers, run with real capture points and real MLflow.

``kat_churn`` (namespace ``kat``): ``train`` reads ``train.csv`` and ``holdout.csv``.
Version 1 (C=0.5); then one value of ``train.csv`` changes and version 2 is trained with
C=1.0 — exactly one input file and one parameter differ; then ``train.csv`` is corrupted and
version 3 is trained (C=1.0) and promoted to ``@champion``, and ``score`` loads the
champion and writes ``preds.csv``.

``kat_gaps`` (namespace ``kat_gaps``): ``clean`` writes ``clean.csv`` but records no input
(the step read ``raw.csv`` outside lineage); ``train`` reads ``clean.csv`` and
``customers.csv``, tagged ``pii`` with OpenLineage's ``tags`` facet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from openlineage.client.facet_v2 import tags_dataset
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import provlink

MODEL = "kat_churn"
GAPS_MODEL = "kat_gaps"


@dataclass(slots=True, kw_only=True)
class KnownAnswers:
    workdir: Path
    train: Path
    holdout: Path
    predictions: Path
    clean: Path
    customers: Path
    train_digests: list[str] = field(default_factory=list)  # sha256:… of train.csv per version
    train_runs: list[str] = field(default_factory=list)  # capture-point run ids, v1..v3
    score_run: str = ""
    clean_run: str = ""
    gaps_version: str = ""


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _train(answers: KnownAnswers, c: float) -> str:
    with provlink.capture("train", namespace="kat", capture_files=False,
                          parameters={"C": c}) as point:
        point.add_input(answers.train)
        point.add_input(answers.holdout)
        frame = pd.read_csv(answers.train)
        with mlflow.start_run(run_name="train"):
            mlflow.log_param("C", c)
            model = LogisticRegression(C=c, max_iter=300).fit(frame.drop(columns="target"),
                                                              frame["target"])
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL,
                                            pip_requirements=["scikit-learn"])
        answers.train_runs.append(point.run_id)
    answers.train_digests.append(sha256(answers.train))
    return str(info.registered_model_version)


def run_known_answers(workdir: Path) -> KnownAnswers:
    workdir.mkdir(parents=True, exist_ok=True)
    answers = KnownAnswers(workdir=workdir, train=workdir / "train.csv",
                           holdout=workdir / "holdout.csv", predictions=workdir / "preds.csv",
                           clean=workdir / "clean.csv", customers=workdir / "customers.csv")
    iris = load_iris(as_frame=True).frame
    iris.iloc[::2].to_csv(answers.train, index=False)
    iris.iloc[1::2].to_csv(answers.holdout, index=False)
    client = mlflow.MlflowClient()

    _train(answers, 0.5)
    edited = pd.read_csv(answers.train)
    edited.loc[0, "sepal length (cm)"] = 5.0  # one value of one input file changes
    edited.to_csv(answers.train, index=False)
    _train(answers, 1.0)
    corrupted = pd.read_csv(answers.train)
    corrupted["target"] = 0  # the corruption: every label overwritten
    corrupted.loc[0, "target"] = 1
    corrupted.to_csv(answers.train, index=False)
    bad = _train(answers, 1.0)
    client.set_registered_model_alias(MODEL, "champion", bad)

    with provlink.capture("score", namespace="kat", capture_files=False) as point:
        point.add_input(answers.holdout)
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        frame = pd.read_csv(answers.holdout)
        frame["prediction"] = loaded.predict(frame.drop(columns="target"))
        frame.to_csv(answers.predictions, index=False)
        point.add_output(answers.predictions)
        answers.score_run = point.run_id

    iris.to_csv(workdir / "raw.csv", index=False)
    with provlink.capture("clean", namespace="kat_gaps", capture_files=False) as point:
        iris.dropna().to_csv(answers.clean, index=False)  # raw.csv read outside lineage
        point.add_output(answers.clean)
        answers.clean_run = point.run_id
    pd.DataFrame({"customer": [1, 2], "email": ["a@example.com", "b@example.com"]}).to_csv(
        answers.customers, index=False)
    pii = tags_dataset.TagsDatasetFacet(tags=[tags_dataset.TagsDatasetFacetFields(
        key="pii", value="true", source="USER")])
    with provlink.capture("train", namespace="kat_gaps", capture_files=False) as point:
        point.add_input(answers.clean)
        point.add_input(answers.customers, facets={"tags": pii})
        frame = pd.read_csv(answers.clean)
        with mlflow.start_run(run_name="train_gaps"):
            model = LogisticRegression(max_iter=300).fit(frame.drop(columns="target"),
                                                         frame["target"])
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=GAPS_MODEL,
                                            pip_requirements=["scikit-learn"])
    answers.gaps_version = str(info.registered_model_version)
    return answers
