"""Known answers for ``diff`` and ``impact``: two training runs that differ in exactly one
input file and one parameter."""

from __future__ import annotations

import json

from provlink.governance.diff import diff_traces
from provlink.governance.impact import impact
from provlink.governance.registry_view import MlflowRegistry
from provlink.governance.trace import LineageApi, Trace, trace
from tests.governance.conftest import Deployment
from tests.governance.pipelines import MODEL


def _trace(d: Deployment, version: str) -> Trace:
    return trace(LineageApi(d.url), namespace=d.model_namespace, name=MODEL, version=version)


def test_diff_names_exactly_the_changed_file_and_parameter(deployment: Deployment) -> None:
    report = diff_traces(_trace(deployment, "1"), _trace(deployment, "2"))
    a = deployment.answers
    assert [(c.kind, c.key) for c in report.changes] == [
        ("dataset", str(a.train.resolve())), ("parameter", "C")]
    dataset, parameter = report.changes
    assert (dataset.before, dataset.after) == (a.train_digests[0], a.train_digests[1])
    assert (parameter.before, parameter.after, parameter.sources) == ("0.5", "1.0",
                                                                      ("run", "mlflow"))


def test_diff_cli_prints_the_two_changes_and_json(deployment: Deployment) -> None:
    code, out = deployment.cli("diff", f"models:/{MODEL}/1", f"models:/{MODEL}/2")
    assert code == 0
    assert "2 change(s) upstream" in out
    assert "parameter C (run and mlflow): 0.5 → 1.0" in out
    code, out = deployment.cli("diff", f"models:/{MODEL}/1", f"models:/{MODEL}/2", "--json")
    assert {c["key"] for c in json.loads(out)["changes"]} == {
        str(deployment.answers.train.resolve()), "C"}


def test_impact_of_the_changed_version_names_exactly_the_second_model(
        deployment: Deployment) -> None:
    a = deployment.answers
    report = impact(LineageApi(deployment.url), "file", str(a.train.resolve()),
                    version=a.train_digests[1], registry=MlflowRegistry(deployment.tracking_uri))
    assert [m.model for m in report.models] == [f"models:/{MODEL}/2"]
    assert [m.aliases for m in report.models] == [()]  # @champion is on version 3
    assert report.versions[0].read_by == (a.train_runs[1],)


def test_impact_of_every_version_marks_the_serving_model(deployment: Deployment) -> None:
    a = deployment.answers
    code, out = deployment.cli("impact", str(a.train), "--json")
    assert code == 0
    report = json.loads(out)
    assert [(m["model"], m["serving"]) for m in report["models"]] == [
        (f"models:/{MODEL}/1", False), (f"models:/{MODEL}/2", False),
        (f"models:/{MODEL}/3", True)]
    assert {d["name"] for d in report["datasets"]} == {str(a.predictions.resolve())}
    assert {j["name"] for j in report["jobs"]} == {"train", "score"}
    code, out = deployment.cli("impact", str(a.train), "--version", a.train_digests[2][:20])
    assert code == 0 and f"models:/{MODEL}/3" in out and "SERVING @champion" in out
    assert f"models:/{MODEL}/2" not in out


def test_impact_of_an_unknown_version_says_which_exist(deployment: Deployment) -> None:
    code, _ = deployment.cli("impact", str(deployment.answers.train), "--version", "sha256:00")
    assert code == 2
