"""coverage's audit figures over a DAG run and its tasks: the orchestrating run carries no
data of its own, so it is neither a step without inputs nor a gap; a task without inputs
still is one."""

from __future__ import annotations

from typing import Any

from provlink.governance.coverage import collect_runs, coverage_of

DAG_RUN = "01934a00-0000-7000-8000-000000000001"


def event(kind: str, run_id: str, job: str, *, parent: str | None = None,
          inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    facets = ({"parent": {"run": {"runId": parent}, "job": {"namespace": "default",
                                                            "name": "dag"}}}
              if parent else {})
    return {"eventType": kind, "run": {"runId": run_id, "facets": facets},
            "job": {"namespace": "default", "name": job},
            "inputs": [dataset(n) for n in inputs], "outputs": [dataset(n) for n in outputs]}


def dataset(name: str) -> dict[str, Any]:
    return {"namespace": "file", "name": name,
            "facets": {"version": {"datasetVersion": f"sha256:{name}"}}}


def pipeline(*, first_task_inputs: tuple[str, ...]) -> list[dict[str, Any]]:
    tasks = [("t1", "01934a00-0000-7000-8000-000000000002", first_task_inputs, ("a",)),
             ("t2", "01934a00-0000-7000-8000-000000000003", ("a",), ("b",))]
    events = [event("START", DAG_RUN, "dag")]
    for name, run_id, inputs, outputs in tasks:
        events += [event("START", run_id, f"dag.{name}", parent=DAG_RUN),
                   event("COMPLETE", run_id, f"dag.{name}", parent=DAG_RUN,
                         inputs=inputs, outputs=outputs)]
    return [*events, event("COMPLETE", DAG_RUN, "dag")]


def test_the_dag_run_is_not_a_step_without_data() -> None:
    runs, count = collect_runs(pipeline(first_task_inputs=("raw",)))
    report = coverage_of(runs, count)
    assert (report.runs, report.step_runs, report.runs_with_inputs_and_outputs) == (3, 2, 2)
    assert report.as_dict()["figures"]["runsWithInputsAndOutputs"] == 1.0
    assert report.gaps == ()


def test_a_task_without_inputs_is_still_a_gap() -> None:
    runs, count = collect_runs(pipeline(first_task_inputs=()))
    report = coverage_of(runs, count)
    assert report.as_dict()["figures"]["runsWithInputsAndOutputs"] == 0.5
    assert [(g.job, g.no_inputs, g.no_outputs) for g in report.gaps] == [("default/dag.t1", 1, 0)]


def test_a_run_that_names_no_child_and_has_no_data_is_a_gap() -> None:
    runs, count = collect_runs([event("START", DAG_RUN, "lonely"),
                                event("COMPLETE", DAG_RUN, "lonely")])
    report = coverage_of(runs, count)
    assert report.step_runs == 1 and report.runs_with_inputs_and_outputs == 0
    assert [(g.job, g.no_inputs, g.no_outputs) for g in report.gaps] == [("default/lonely", 1, 1)]
