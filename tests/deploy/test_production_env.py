"""The production route in a production-shaped environment, with nothing borrowed from .venv.

* ``make package`` (``scripts/package.sh --skip-env``: the wheel, ``mwaa/plugins.zip``, ``jobs/``,
  ``conf/``, ``jars/``) into a temporary ``dist/``, the layout ``aws s3 sync dist/
  s3://<bucket>/artifacts/`` uploads (docs/deploy.md).
* A fresh venv with exactly what terraform installs on an MWAA worker: Airflow at
  ``modules/airflow``'s ``airflow_version`` plus its ``requirements.txt`` (the Spark provider, pyspark,
  s3fs and the catalog2vec wheel from plugins.zip), resolved under ``requirements/airflow.lock`` by uv
  from its local cache (offline): no torch, no dev packages, no ``spark-defaults.conf``, and an empty
  ``SPARK_CONF_DIR``.
* In it, with the ``CATALOG2VEC_*`` environment and Spark connection that terraform's startup script
  exports (rendered from the prod environment's .tf files by :mod:`tests.deploy.tf_render`): the
  DagBag imports with no error, and every Spark task's spark-submit command (built by the provider's
  hook) names the jars, the archive, the application, ``--py-files`` and ``--files`` as ``s3a://``
  objects that the upload holds; the same deployment without ``CATALOG2VEC_JARS`` fails the check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import tf_render
from tests.deploy.conftest import DAG_FOLDER, REPO

pytestmark = pytest.mark.slow  # ~1 min: package (no env archive) + an offline venv + two DAG parses

UV = Path(sys.executable).with_name("uv")
NEEDED_JARS = ("delta-spark_", "delta-storage-", "hadoop-aws-", "bundle-")  # Delta, S3A, the AWS SDK
# options of spark-submit that take no value
FLAGS = {"--verbose", "--supervise"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "package.sh"), "--out", str(out), "--skip-env"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def deployment(dist: Path) -> dict[str, Any]:
    """terraform's prod values for this build: the module's variables, the startup script, requirements."""
    (wheel,) = dist.glob("catalog2vec-*-py3-none-any.whl")
    module_vars = tf_render.airflow_module_vars("prod", catalog2vec_wheel=wheel.name, dist_dir=str(dist))
    script = tf_render.startup_script(module_vars)
    return {"vars": module_vars, "script": script, "exports": tf_render.exports(script),
            "requirements": tf_render.worker_requirements(module_vars), "wheel": wheel}


@pytest.fixture(scope="module")
def worker_venv(deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.is_file():
        pytest.skip("no uv in the venv (make setup installs it)")
    venv = tmp_path_factory.mktemp("mwaa-worker") / "venv"
    env = {**os.environ, "UV_OFFLINE": "1", "VIRTUAL_ENV": ""}
    made = subprocess.run([str(UV), "venv", "-q", "-p", sys.executable, str(venv)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    plugins = "/usr/local/airflow/plugins/"
    reqs = [str(deployment["wheel"]) if r.startswith(plugins) else r for r in deployment["requirements"]]
    assert str(deployment["wheel"]) in reqs  # the wheel comes from plugins.zip, by the name terraform gives it
    airflow = f"apache-airflow=={deployment['vars']['var.airflow_version']}"
    inst = subprocess.run([str(UV), "pip", "install", "-q", "--offline", "-p", str(venv / "bin" / "python"),
                           "-c", str(REPO / "requirements" / "airflow.lock"), airflow, *reqs],
                          env=env, capture_output=True, text=True, timeout=900)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def rendered(worker_venv: Path, deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DagBag parsed in the worker venv with terraform's environment; its JSON report lines."""
    home = tmp_path_factory.mktemp("airflow-home")
    empty_conf = tmp_path_factory.mktemp("spark-conf")
    env = {"PATH": f"{worker_venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "SPARK_CONF_DIR": str(empty_conf),
           "PYTHONPATH": "", **deployment["exports"]}
    env = {k: v for k, v in env.items() if k != "SPARK_DIST_CLASSPATH"}
    proc = subprocess.run([str(worker_venv / "bin" / "python"), str(Path(__file__).with_name("prod_render.py")),
                           str(DAG_FOLDER)], cwd=home, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    lines = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines() if re.match(r"^[A-Z_]+ [{\[]", ln))
    return {k: json.loads(v) for k, v in lines.items()}


def parse_submit(cmd: list[str]) -> tuple[dict[str, list[str]], str]:
    """``spark-submit`` options (each name -> its values, in order) and the application."""
    assert cmd[0] == "spark-submit", cmd[:3]
    opts: dict[str, list[str]] = {}
    i = 1
    while i < len(cmd) and cmd[i].startswith("--"):
        if cmd[i] in FLAGS:
            opts.setdefault(cmd[i], []).append("")
            i += 1
        else:
            opts.setdefault(cmd[i], []).append(cmd[i + 1])
            i += 2
    return opts, cmd[i]


def submission_problems(cmd: list[str], dist: Path, artifacts: str) -> list[str]:
    """Why this spark-submit would not run on the cluster from the upload of ``dist`` to
    ``artifacts`` (``s3a://<bucket>/artifacts``): [] when nothing is missing."""
    opts, application = parse_submit(cmd)
    problems = []
    jars = [j for v in opts.get("--jars", []) for j in v.split(",") if j]
    if not jars:
        problems.append("no --jars: Delta and s3a:// are missing on the cluster")
    problems += [f"--jars lacks {n}*" for n in NEEDED_JARS if not any(Path(j).name.startswith(n) for j in jars)]
    uris = [application, *jars] + [u.split("#", 1)[0] for o in ("--py-files", "--files", "--archives")
                                   for v in opts.get(o, []) for u in v.split(",") if u]
    archive_name = re.search(r'^ARCHIVE="\$OUT/(.+)"$', (REPO / "scripts" / "package.sh").read_text(), re.M)
    assert archive_name, "package.sh names no ARCHIVE"
    for uri in uris:
        if not uri.startswith(artifacts + "/"):
            problems.append(f"{uri}: not an s3a:// object of the upload {artifacts}/")
            continue
        rel = uri.removeprefix(artifacts + "/")
        if not (dist / rel).is_file() and rel != archive_name.group(1):  # the env archive: see module doc
            problems.append(f"{uri}: make package wrote no {rel}")
    if not any(v.endswith("#environment") for v in opts.get("--archives", [])):
        problems.append("no --archives …#environment: the executors would have no Python environment")
    conf = dict(c.split("=", 1) for c in opts.get("--conf", []))
    for key, value in (("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"),
                       ("spark.pyspark.python", "./environment/bin/python")):
        if conf.get(key) != value:
            problems.append(f"--conf {key}={conf.get(key)!r}, not {value}")
    return problems


def test_the_worker_venv_has_only_what_terraform_installs(worker_venv: Path, deployment: dict[str, Any]) -> None:
    py = str(worker_venv / "bin" / "python")
    code = ("import importlib.util as u, pathlib, airflow, pyspark, catalog2vec; "
            "print(airflow.__version__, [m for m in ('torch', 'pytest', 'delta') if u.find_spec(m)], "
            "sorted(p.name for p in (pathlib.Path(pyspark.__file__).parent / 'conf').glob('*')) "
            "if (pathlib.Path(pyspark.__file__).parent / 'conf').is_dir() else [])")
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    version, rest = proc.stdout.strip().split(" ", 1)
    assert version == deployment["vars"]["var.airflow_version"]
    lock = (REPO / "requirements" / "airflow.lock").read_text()
    assert f"\napache-airflow=={version}\n" in lock  # terraform's Airflow is the one the tests run
    assert rest == "[] []", rest  # no torch, no test tools, no delta-spark; no spark-defaults.conf


def test_the_dagbag_imports_in_the_worker_venv(rendered: dict[str, Any]) -> None:
    assert rendered["IMPORT_ERRORS"] == {}
    assert {k for k, v in rendered["POOLS"].items() if v == "gpu"} == {"train", "embed"}


def test_every_rendered_submission_names_jars_archives_and_s3a_objects_that_exist(
        rendered: dict[str, Any], deployment: dict[str, Any], dist: Path) -> None:
    subs = rendered["SUBMISSIONS"]
    assert len(subs) >= 15 and {"ingest_catalog", "train", "embed", "register_tables"} <= set(subs), sorted(subs)
    bucket = tf_render.APPLY_OUTPUTS["module.storage.lakehouse_bucket"]
    artifacts = f"s3a://{bucket}/artifacts"
    for task_id, cmd in subs.items():
        assert submission_problems(cmd, dist, artifacts) == [], (task_id, cmd)
        opts, application = parse_submit(cmd)
        assert opts["--master"] == ["yarn"] and opts["--deploy-mode"] == ["cluster"], task_id
        assert application.startswith(f"{artifacts}/jobs/") and application.endswith(".py"), task_id
        conf = dict(c.split("=", 1) for c in opts["--conf"])
        assert conf["spark.sql.catalogImplementation"] == "hive"  # the Glue metastore of register_tables
    # terraform's jar list is exactly what make package emits
    assert sorted(Path(j).name for j in subs["embed"][subs["embed"].index("--jars") + 1].split(",")) == \
        sorted((dist / "jars" / "jars.txt").read_text().split())


def test_a_submission_without_jars_fails_the_check(rendered: dict[str, Any], dist: Path) -> None:
    bucket = tf_render.APPLY_OUTPUTS["module.storage.lakehouse_bucket"]
    for task_id, cmd in rendered["SUBMISSIONS_NO_JARS"].items():
        problems = submission_problems(cmd, dist, f"s3a://{bucket}/artifacts")
        assert "no --jars: Delta and s3a:// are missing on the cluster" in problems, task_id
    # and a jar that was never uploaded is caught too
    cmd = list(rendered["SUBMISSIONS"]["build_vocab"])
    i = cmd.index("--jars") + 1
    cmd[i] = cmd[i].replace("hadoop-aws-3.5.0.jar", "hadoop-aws-9.9.9.jar")
    assert any("hadoop-aws-9.9.9.jar" in p for p in submission_problems(cmd, dist, f"s3a://{bucket}/artifacts"))


def test_the_startup_script_creates_the_gpu_pool_and_ships_the_jars_to_spark_submit(deployment: dict[str, Any]) -> None:
    script, exports = deployment["script"], deployment["exports"]
    pools = tf_render.pools_json(script)
    assert pools["gpu"]["slots"] == 8  # prod: as many as GPU task nodes
    assert "airflow pools import /tmp/catalog2vec-pools.json" in script
    assert not [v for v in exports.values() if "known after apply" in v]
    # the workers' spark-submit opens s3a:// itself: the same jars on its own class path
    assert 'export SPARK_DIST_CLASSPATH="$JARS_DIR/*"' in script
    jar_uris = exports["CATALOG2VEC_JARS"].split(",")
    assert f"python3 - \"$JARS_DIR\" '{exports['CATALOG2VEC_JARS']}'" in script and len(jar_uris) >= 4
    assert exports.get("CATALOG2VEC_GPU_POOL", "gpu") == "gpu"
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=60)
    assert syntax.returncode == 0, syntax.stderr
