"""A DAG as a team writes it, with lineage nowhere in mind: a PythonOperator, a BashOperator
and a TaskFlow task passing local files along. provlink reports every file anyway."""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

DATA = Path(os.environ.get("TEAM_DATA_DIR", "/tmp/team_data"))


def export_orders(out_dir: str, rows: int) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / "orders.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "amount"])
        writer.writerows((i, i * 3 % 17) for i in range(rows, 0, -1))


with DAG(dag_id="team_files", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         tags=["demo"]):
    export = PythonOperator(task_id="export_orders", python_callable=export_orders,
                            op_kwargs={"out_dir": str(DATA), "rows": 100})

    sort_orders = BashOperator(
        task_id="sort_orders",
        bash_command=(f"head -n 1 {DATA}/orders.csv > {DATA}/orders_sorted.csv && "
                      f"tail -n +2 {DATA}/orders.csv | sort -t, -k2 -n"
                      f" >> {DATA}/orders_sorted.csv"),
    )

    @task
    def summarise() -> None:
        import pandas as pd

        orders = pd.read_csv(DATA / "orders_sorted.csv")
        orders.describe().to_csv(DATA / "summary.csv")
        orders.to_parquet(DATA / "orders.parquet")

    export >> sort_orders >> summarise()
