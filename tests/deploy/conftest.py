"""Deployment tests: an isolated Airflow home (sqlite under a tmp dir, no example DAGs) set BEFORE
anything imports airflow, the DagBag of pipelines/airflow, and a helper that runs the DAG (or a
subset) with ``dag.test()`` in a subprocess with the Spark connection pointing at ``local[2]``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FOLDER = REPO / "pipelines" / "airflow"
VENV_BIN = Path(sys.executable).parent

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="catalog2vec-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAG_FOLDER)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

LOCAL_SPARK_CONN = json.dumps({"conn_type": "spark", "host": "local[2]"})


@pytest.fixture(scope="session")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FOLDER))


@pytest.fixture(scope="session")
def dag(dagbag: Any) -> Any:
    assert not dagbag.import_errors, dagbag.import_errors
    return dagbag.dags["catalog2vec"]


def airflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_CONN_SPARK_DEFAULT": LOCAL_SPARK_CONN,
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # spark-submit from .venv/bin
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "CATALOG2VEC_SPARK_LOG_LEVEL": "WARN",
            # dag.test() of Airflow 3.3.2 fails a successful run of a DAG with a DeadlineAlert
            # (the deadline itself is checked on the parsed DAG: test_deadline_and_failure_alerts...)
            "CATALOG2VEC_DEADLINE_HOURS": "0",
        }
    )
    return env


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """``airflow db migrate`` once per session (sqlite in the tmp AIRFLOW_HOME, ~15 s)."""
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"], env=airflow_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the pool that bounds concurrent GPU jobs (train, embed), created the way terraform's startup
    # script creates it: `airflow pools import` of the pools file it renders (dev environment)
    from tests.deploy import tf_render

    script = tf_render.startup_script(tf_render.airflow_module_vars("dev", catalog2vec_wheel="catalog2vec.whl"))
    pools = _AIRFLOW_HOME / "catalog2vec-pools.json"
    pools.write_text(json.dumps(tf_render.pools_json(script)))
    proc = subprocess.run([str(VENV_BIN / "airflow"), "pools", "import", str(pools)],
                          env=airflow_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _AIRFLOW_HOME


def own_metadata_db(tmp_path: Path) -> dict[str, str]:
    """The environment that gives one DAG run its own copy of the session's migrated metadata DB.

    Outlet assets are named per table and their URI is the table in the deployment's lakehouse; a
    deployment has one lakehouse, but these tests give each run its own, and Airflow deactivates an
    asset whose name comes back with another URI. A fresh copy per run is a fresh deployment."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "airflow.db"
    shutil.copyfile(_AIRFLOW_HOME / "airflow.db", db)
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}


def run_dag(
    tmp_path: Path,
    conf: dict[str, Any],
    tasks: list[str] | None = None,
    mark_success: str | None = None,
    timeout: int = 1800,
    extra_env: dict[str, str] | None = None,
    logical_date: str | None = None,
) -> tuple[dict[str, str], str]:
    """Run the DAG (or only ``tasks``) with dag.test() in a subprocess; returns ({task: state}, log).

    ``conf`` holds the run params; its ``lakehouse`` and ``config`` entries are *deployment* settings,
    which a trigger cannot set, so they become the workers' ``CATALOG2VEC_LAKEHOUSE`` /
    ``CATALOG2VEC_CONFIG``; inputs may come from the temporary directory and the repository's examples
    (``CATALOG2VEC_INPUT_ROOTS``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "dag_test.log"
    conf = dict(conf)
    deployment = {"CATALOG2VEC_INPUT_ROOTS": ",".join((tempfile.gettempdir(), str(REPO / "examples")))}
    if "lakehouse" in conf:
        deployment["CATALOG2VEC_LAKEHOUSE"] = str(conf.pop("lakehouse"))
    if "config" in conf:
        deployment["CATALOG2VEC_CONFIG"] = str(conf.pop("config"))
    extra_env = {**deployment, **own_metadata_db(tmp_path), **(extra_env or {})}
    cmd = [sys.executable, str(Path(__file__).with_name("dag_runner.py")), "--conf", json.dumps(conf)]
    if logical_date:
        cmd += ["--logical-date", logical_date]
    for t in tasks or []:
        cmd += ["--task", t]
    if mark_success:
        cmd += ["--mark-success", mark_success]
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env={**airflow_env(), **extra_env}, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO)
    text = log.read_text(errors="replace")
    result_lines = [ln for ln in text.splitlines() if ln.startswith("DAG_TEST_RESULT ")]
    assert proc.returncode == 0 and result_lines, f"dag.test failed (rc={proc.returncode}):\n{text[-6000:]}"
    return json.loads(result_lines[-1].removeprefix("DAG_TEST_RESULT ")), text
