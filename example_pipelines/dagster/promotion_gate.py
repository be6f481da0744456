"""The demo assets with a promotion gate: an asset check on ``wine_model`` that fails,
naming each unmet requirement of ``promotion_policy.yml``, through ``provlink gate``'s
Python API. Run it with ``dagster dev -f example_pipelines/dagster/promotion_gate.py``.
"""

import sys
from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, Definitions, asset_check
from provlink_dagster import with_lineage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml_pipeline import PIPELINE, daily_feature_stats, ml_pipeline_job, steps, wine_model

POLICY = Path(__file__).resolve().parents[1] / "promotion_policy.yml"


@asset_check(asset=wine_model, blocking=True,
             description="provlink gate: lineage, digests, sensitive inputs, ledger")
def wine_model_passes_the_gate() -> AssetCheckResult:
    import mlflow

    from provlink.governance.gate import gate_model

    uri = steps.tracking_uri(steps.data_dir())
    champion = mlflow.MlflowClient(uri).get_model_version_by_alias(steps.MODEL_NAME, "champion")
    result = gate_model(f"models:/{steps.MODEL_NAME}/{champion.version}", tracking_uri=uri,
                        policy=POLICY)
    return AssetCheckResult(
        passed=result.passed, severity=AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata={"unmet": [f"{f.requirement}: {f.detail}" for f in result.unmet]})


defs = with_lineage(Definitions(assets=[*PIPELINE, daily_feature_stats],
                                asset_checks=[wine_model_passes_the_gate],
                                jobs=[ml_pipeline_job]))
