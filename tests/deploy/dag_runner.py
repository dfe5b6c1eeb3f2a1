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
    print("DAG_TEST_RESULT " + json.dumps(states), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
