"""MLflow linking: the time discovery and tagging add at the end of a capture point.

For 0 (the baseline), 1 and 20 MLflow runs started inside a capture point on a SQLite
tracking store, times ``finish()`` — where the MLflow runs are found by tag, read, their
model version (one per capture point) tagged and the event built — and reports the
median, the time added over the baseline and the ratio, all measured in this process.
Events go to provlink's in-memory emitter so spool I/O is not part of the figure. Run:
``.venv/bin/python benchmarks/bench_mlflow.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def finish_seconds(runs: int, rounds: int, model: str) -> float:
    """Median seconds of ``finish()`` for a capture point holding ``runs`` MLflow runs."""
    import mlflow

    import provlink

    client = mlflow.MlflowClient()
    samples = []
    for _ in range(rounds):
        point = provlink.CapturePoint("bench", capture_files=False).start()
        for index in range(runs):
            with mlflow.start_run() as run:
                mlflow.log_param("index", index)
                mlflow.log_metric("loss", 0.1)
            if index == 0:
                client.create_model_version(model, source=f"{run.info.artifact_uri}/model",
                                            run_id=run.info.run_id)
        start = time.perf_counter()
        point.finish()
        samples.append(time.perf_counter() - start)
        assert len(point.mlflow_runs) == runs, "discovery missed runs"
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "mlflow.json")
    args = parser.parse_args()
    rounds = 3 if args.quick else 15

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROVLINK_HOME"] = str(Path(tmp) / "home")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)  # the default experiment's artifacts stay in the temporary directory
        import mlflow

        from provlink.testing import capture_events

        client = mlflow.MlflowClient()
        client.create_registered_model("bench-model")
        with capture_events():
            finish_seconds(1, 2, "bench-model")  # warm up: imports, store engine, env probe
            baseline = finish_seconds(0, rounds, "bench-model")
            one = finish_seconds(1, rounds, "bench-model")
            twenty = finish_seconds(20, rounds, "bench-model")

    result = {
        "rounds": rounds,
        "finish_no_mlflow_ms": round(baseline * 1000, 2),
        "finish_1_run_ms": round(one * 1000, 2),
        "finish_20_runs_ms": round(twenty * 1000, 2),
        "added_1_run_ms": round((one - baseline) * 1000, 2),
        "added_20_runs_ms": round((twenty - baseline) * 1000, 2),
        "ratio_1_run": round(one / baseline, 2),
        "ratio_20_runs": round(twenty / baseline, 2),
        "goal_added_1_run_ms": 50,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
