"""MLflow: the run-context provider (tags runs with lineage ids), the run link (finds those
runs when a capture point ends) and the registry (model versions as datasets, their tags).

Kept empty on purpose: MLflow imports ``provlink.mlflow.context`` while ``import mlflow``
runs, so this package must import nothing.
"""
