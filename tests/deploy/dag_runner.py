"""Run the catalog2vec DAG (or a subset of its tasks) once with ``dag.test()`` and print the task
states as one line ``DAG_TEST_RESULT {json}``. Used by tests/deploy in a subprocess (the Airflow
home, the Spark connection and PATH come from the environment)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conf", default="{}", help="run conf (DAG params) as JSON")
    parser.add_argument("--task", action="append", default=[], help="run only these tasks (repeatable)")
    parser.add_argument("--logical-date", default=None, help="ISO date of the run (default: now)")
    parser.add_argument("--mark-success", default=None, help="regex of task ids marked success, not run")
    args = parser.parse_args(argv)

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.dags["catalog2vec"]
    if args.task:
        dag = dag.partial_subset(task_ids=args.task, include_upstream=False, include_downstream=False)
    kwargs: dict[str, Any] = {"run_conf": json.loads(args.conf)}
    if args.logical_date:
        kwargs["logical_date"] = datetime.fromisoformat(args.logical_date).replace(tzinfo=UTC)
    if args.mark_success:
        kwargs["mark_success_pattern"] = args.mark_success
    dr = dag.test(**kwargs)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    states["__dagrun__"] = str(dr.state)
    for event in asset_events(dr.dag_id, dr.run_id):
        print("ASSET_EVENT " + json.dumps(event, default=str), flush=True)
    print("DAG_TEST_RESULT " + json.dumps(states), flush=True)
    return 0


def asset_events(dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The asset events this run emitted (from the metadata database)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent).filter(AssetEvent.source_dag_id == dag_id,
                                                AssetEvent.source_run_id == run_id).all()
        return [{"asset": e.asset.name, "uri": e.asset.uri, "task_id": e.source_task_id, "extra": e.extra}
                for e in rows]


if __name__ == "__main__":
    sys.exit(main())
