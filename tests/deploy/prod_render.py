"""Run by the production-shaped environment's Python (tests/deploy/test_production_env.py): parse
the DAG folder into a DagBag the way the scheduler does and print, as JSON lines, the import errors
and the spark-submit command every Spark task would run (the provider's own hook builds it from the
operator's arguments and the Spark connection) — then the same with ``CATALOG2VEC_JARS`` unset."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any


def commands(dag: Any) -> dict[str, list[str]]:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    out = {}
    for task in dag.tasks:
        if isinstance(task, SparkSubmitOperator):
            # the operator's own argument cleaning (Catalog2VecSparkSubmitOperator.execute), un-rendered Jinja kept
            task.application_args = sys.modules[type(task).__module__].clean_args(task.application_args or [])
            hook = task._get_hook()
            out[task.task_id] = hook._build_spark_submit_command(task.application)
    return out


def main(dag_folder: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dag_folder)
    print("IMPORT_ERRORS " + json.dumps({str(k): str(v)[-2000:] for k, v in bag.import_errors.items()}))
    dag = bag.dags.get("catalog2vec")
    if dag is None:
        return 1
    pools = {t.task_id: t.pool for t in dag.tasks}
    print("POOLS " + json.dumps(pools))
    print("SUBMISSIONS " + json.dumps(commands(dag)))
    # the negative control: the same deployment without its jars
    os.environ.pop("CATALOG2VEC_JARS", None)
    spec = importlib.util.spec_from_file_location("catalog2vec_dag_nojars", os.path.join(dag_folder, "catalog2vec_dag.py"))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the module runs
    spec.loader.exec_module(mod)
    print("SUBMISSIONS_NO_JARS " + json.dumps(commands(mod.dag)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
