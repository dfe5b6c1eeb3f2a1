"""Run ONE task of the catalog2vec DAG the way its operator does, without a scheduler: import the
DAG file with the deployment's ``CATALOG2VEC_*`` environment (so :func:`render_submission` renders
the task's submission), render the task's own application arguments (their Jinja, with the DAG's
param defaults updated by the given run conf, ``run_id`` and ``ds``) and launch it with the Spark
provider's own hook (``SparkSubmitHook.submit``: the connection from ``AIRFLOW_CONN_<ID>``). Prints
``SUBMIT_COMMAND <json>`` and exits 0, or 1 with the hook's error (spark-submit's exit code in it).
Used by tests/integration/test_standalone.py.

    python tests/deploy/submit_task.py TASK_ID RUN_ID '{"input_path": "s3://…"}'
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import jinja2

DAG_FILE = Path(__file__).resolve().parents[2] / "pipelines" / "airflow" / "catalog2vec_dag.py"


def main(argv: list[str]) -> int:
    task_id, run_id, conf = argv[0], argv[1], json.loads(argv[2])
    spec = importlib.util.spec_from_file_location("catalog2vec_dag", DAG_FILE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the module runs
    spec.loader.exec_module(mod)
    task = mod.dag.get_task(task_id)
    params = {**{k: mod.dag.params[k] for k in mod.dag.params}, **conf}
    context = {"params": params, "run_id": run_id, "dag": mod.dag, "ds": run_id[:10]}

    def render(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return type(value)(render(v) for v in value)
        return jinja2.Template(value).render(**context) if isinstance(value, str) else value

    task.application_args = mod.clean_args(render(list(task.application_args)))
    hook = task._get_hook()
    print("SUBMIT_COMMAND " + json.dumps(hook._build_spark_submit_command(task.application)), flush=True)
    try:
        hook.submit(task.application)
    except Exception as exc:  # the provider raises AirflowException with spark-submit's exit code
        print(f"SUBMIT_FAILED {type(exc).__name__}: {exc}", flush=True)
        return 1
    print("SUBMIT_OK", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.exit(main(sys.argv[1:]))
