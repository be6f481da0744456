"""One task writing ``$SHARED_CONTENT`` to ``$SHARED_FILE``: the file a Dagster asset and
plain Python write too in ``test_same_bytes_same_version.py``."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

with DAG(dag_id="shared_file", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def write_shared() -> None:
        Path(os.environ["SHARED_FILE"]).write_text(os.environ["SHARED_CONTENT"])

    write_shared()
