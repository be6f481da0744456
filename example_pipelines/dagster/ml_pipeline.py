"""The demo ML pipeline as Dagster assets, with lineage from one line: ``with_lineage``.

    raw_wine (CSV) -> wine_features (Parquet) -> wine_model (MLflow run + registered model,
    alias ``champion``) -> wine_predictions (Parquet); daily_feature_stats is partitioned.

The asset bodies call the same functions as the Airflow DAG (``pipeline_steps``) and only
describe what they wrote in Dagster's standard metadata (``path``, ``dagster/row_count``,
``dagster/column_schema``, ``dagster/column_lineage``); they never mention provlink.
Run it with ``dagster dev -f example_pipelines/dagster/ml_pipeline.py``.
"""

import json
import sys
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
    asset,
    define_asset_job,
)
from provlink_dagster import with_lineage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pipeline_steps as steps  # noqa: E402


def _paths() -> steps.Paths:
    return steps.Paths(root=steps.data_dir())


def _table_metadata(path: Path) -> dict[str, object]:
    """What Dagster's UI shows for a table: where it is, its columns, its rows."""
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        columns = [TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()]
        rows = len(frame)
    else:
        schema = pq.read_schema(path)
        columns = [TableColumn(name=f.name, type=str(f.type)) for f in schema]
        rows = pq.read_metadata(path).num_rows
    return {"path": MetadataValue.path(str(path)), "dagster/row_count": rows,
            "dagster/column_schema": TableSchema(columns=columns)}


@asset(group_name="wine", code_version="1")
def raw_wine() -> MaterializeResult:
    """scikit-learn's bundled wine data, as the pipeline's source CSV."""
    return MaterializeResult(metadata=_table_metadata(steps.write_raw(_paths())))


@asset(group_name="wine", deps=[raw_wine], code_version="1")
def wine_features() -> MaterializeResult:
    """Standardised measurements; each feature column comes from the raw column of that name."""
    path = steps.build_features(_paths())
    metadata = _table_metadata(path)
    lineage = TableColumnLineage(deps_by_column={
        column.name: [TableColumnDep(asset_key=AssetKey("raw_wine"), column_name=column.name)]
        for column in metadata["dagster/column_schema"].columns  # type: ignore[union-attr]
    })
    return MaterializeResult(metadata={**metadata, "dagster/column_lineage": lineage})


class TrainConfig(Config):
    """Hyper-parameters; they show up as the step's OpenLineage parameters."""

    c: float = 1.0
    max_iter: int = 500
    seed: int = 7


@asset(group_name="wine", deps=[wine_features], code_version="1")
def wine_model(config: TrainConfig) -> MaterializeResult:
    """Train, log and register the model; the registry alias ``champion`` points at it."""
    paths = _paths()
    result = steps.train(paths, uri=steps.tracking_uri(paths.root), c=config.c,
                         max_iter=config.max_iter, seed=config.seed)
    return MaterializeResult(metadata={"mlflow_run_id": result["run_id"],
                                       "model_version": result["version"]})


@asset(group_name="wine", deps=[wine_model, wine_features], code_version="1")
def wine_predictions() -> MaterializeResult:
    """Score every row with ``models:/wine_classifier@champion``."""
    paths = _paths()
    path = steps.score(paths, uri=steps.tracking_uri(paths.root))
    return MaterializeResult(metadata=_table_metadata(path))


@asset(group_name="wine", deps=[wine_features],
       partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
def daily_feature_stats(context: AssetExecutionContext) -> MaterializeResult:
    """Per-day summary of the features: a time-partitioned asset (nominalTime in lineage)."""
    import pandas as pd

    paths = _paths()
    frame = pd.read_parquet(paths.features)
    out = paths.root / "stats" / f"{context.partition_key}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(frame.mean(numeric_only=True).round(6).to_dict()))
    return MaterializeResult(metadata={"path": MetadataValue.path(str(out))})


PIPELINE = [raw_wine, wine_features, wine_model, wine_predictions]
ml_pipeline_job = define_asset_job("ml_pipeline", selection=[a.key for a in PIPELINE])

defs = with_lineage(Definitions(assets=[*PIPELINE, daily_feature_stats],
                                jobs=[ml_pipeline_job]))
