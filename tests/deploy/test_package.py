"""Cluster packaging: scripts/package.sh builds the wheel and a venv-pack archive; a job runs from
the unpacked archive in a fresh directory with no access to the checkout or .venv (the way YARN /
Kubernetes run it: `--archives env.tar.gz#environment`, PYSPARK_PYTHON=./environment/bin/python).

The archive holds the runtime lock only (requirements/runtime.lock): no Airflow, test, lint or
deploy tool of the dev venv reaches an executor. To keep the test lean it also excludes the heavy
runtime distributions the ingest job does not import (torch + CUDA libraries, Beam, ...), through
the script's explicit --exclude-dist flag; `make package` excludes nothing. An analyst's
environment is `catalog2vec[read]` alone: no JVM, no torch."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

LEAN_EXCLUDES = ["torch*", "triton", "nvidia-*", "cuda-*", "polars*", "deltalake", "duckdb", "apache-beam", "scipy",
                 "scikit-learn", "faiss-cpu", "lightgbm", "matplotlib", "sympy"]
NOT_RUNTIME = ("apache-airflow", "checkov", "openai", "pytest", "mypy", "ruff", "moto", "selenium", "jupytext",
               "mlflow", "fastapi", "uv")
MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    cmd = ["bash", str(REPO / "scripts" / "package.sh"), "--out", str(out), "--compress-level", "1"]
    for e in LEAN_EXCLUDES:
        cmd += ["--exclude-dist", e]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert re.search(r"all \d+ locked pins present \(runtime.lock\); \d+ non-runtime distributions", proc.stdout), \
        proc.stdout[-2000:]
    return out


@pytest.mark.slow
def test_package_builds_wheel_archive_jobs_and_manifest(packaged: Path) -> None:
    wheel = next(packaged.glob("catalog2vec-*-py3-none-any.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "catalog2vec/schemas/bronze.py" in names and "catalog2vec/spark.py" in names
    assert not any(n.startswith(("tests/", "jobs/")) for n in names)
    assert (packaged / "jobs" / "ingest_catalog.py").is_file() and (packaged / "jobs" / "_common.py").is_file()
    assert (packaged / "conf" / "cluster.toml").is_file()
    # the jars a cluster needs (spark-submit --jars, CATALOG2VEC_JARS) and the wheel for MWAA's plugins
    jars = (packaged / "jars" / "jars.txt").read_text().split()
    assert {"hadoop-aws-3.5.0.jar", "delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"} <= set(jars)
    assert any(j.startswith("bundle-") for j in jars) and all((packaged / "jars" / j).is_file() for j in jars)
    assert zipfile.ZipFile(packaged / "mwaa" / "plugins.zip").namelist() == [wheel.name]
    manifest = (packaged / "catalog2vec-env.manifest.txt").read_text().splitlines()
    assert "pyspark==4.2.0" in manifest and "delta-spark==4.4.0" in manifest
    assert "# EXCLUDED torch==2.14.1" in manifest  # exclusions are recorded, never silent
    names_in = {line.removeprefix("# EXCLUDED ").split("==")[0] for line in manifest}
    assert not [n for n in names_in if n.startswith(NOT_RUNTIME)], sorted(names_in)  # the runtime lock only
    assert "nltk" in names_in and "s3fs" in names_in
    with tarfile.open(packaged / "catalog2vec-env.tar.gz") as tar:
        members = set(tar.getnames())
    assert "bin/python" in members and "bin/activate" in members
    assert any(m.endswith("site-packages/catalog2vec/__init__.py") for m in members)
    assert not any("__editable__" in m for m in members)
    assert not any(m.endswith("site-packages/torch/__init__.py") for m in members)


@pytest.fixture(scope="module")
def archive_run(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """ingest_catalog submitted from the unpacked archive in a fresh directory: (dir, stdout)."""
    work = tmp_path_factory.mktemp("fresh")
    (work / "environment").mkdir(parents=True)
    with tarfile.open(packaged / "catalog2vec-env.tar.gz") as tar:
        tar.extractall(work / "environment", filter="fully_trusted")
    shutil.copytree(packaged / "jobs", work / "jobs")
    shutil.copytree(packaged / "conf", work / "conf")
    # a 30-row catalog from the bundled sample, one row with no id (must be quarantined)
    with (REPO / "examples" / "data" / "styles.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))[:31]
    rows[5][0] = ""
    with (work / "styles.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),  # the Maven/ivy cache of the Delta jars
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": "./environment/bin/python",
        "PYSPARK_DRIVER_PYTHON": "./environment/bin/python",
    }
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    where = subprocess.run(["./environment/bin/python", "-c", "import catalog2vec, pyspark; "
                            "print(catalog2vec.__file__); print(pyspark.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(work / "environment")) for line in where.stdout.split()), where.stdout

    cmd = [
        "./environment/bin/spark-submit", "--master", "local[2]",
        "--packages", "io.delta:delta-spark_4.2_2.13:4.4.0",
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--conf", "spark.ui.enabled=false",
        "--py-files", "jobs/_common.py",
        "jobs/ingest_catalog.py", "--config", "conf/local.toml", "--lakehouse", "lakehouse",
        "--run-id", "from-archive", "--input", "styles.csv", "--format", "csv", "--mapping", MAPPING,
        "--image-template", "images/{item_id}.jpg",
    ]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work, proc.stdout


@pytest.mark.slow
def test_job_runs_from_the_archive_in_a_fresh_directory(archive_run: tuple[Path, str]) -> None:
    work, stdout = archive_run
    assert "read=30 written=29 quarantined=1" in stdout, stdout[-2000:]

    from deltalake import DeltaTable

    items = DeltaTable(str(work / "lakehouse" / "bronze" / "catalog_items")).to_pyarrow_table()
    assert items.num_rows == 29 and set(items.column("run_id").to_pylist()) == {"from-archive"}
    quarantine = DeltaTable(str(work / "lakehouse" / "bronze" / "quarantine")).to_pyarrow_table()
    assert quarantine.column("reason").to_pylist() == ["missing_item_id"]
    assert sys.executable not in stdout  # never fell back to the checkout's interpreter


@pytest.mark.slow
def test_analyst_reads_the_tables_with_only_the_read_extra(packaged: Path, archive_run: tuple[Path, str],
                                                            tmp_path: Path) -> None:
    """`pip install 'catalog2vec[read]'` (here: uv from its cache, offline, at the runtime lock's
    versions) gives an environment with delta-rs, DuckDB, Polars and pandas but no pyspark and no
    torch, in which the project's own readers open the tables the archive's job wrote."""
    work, _ = archive_run
    uv = Path(sys.executable).with_name("uv")
    if not uv.is_file():
        pytest.skip("no uv in the venv (make setup installs it)")
    wheel = next(packaged.glob("catalog2vec-*-py3-none-any.whl"))
    env_dir = tmp_path / "analyst"
    base = {**os.environ, "UV_OFFLINE": "1", "VIRTUAL_ENV": ""}
    made = subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(env_dir)], env=base,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(uv), "pip", "install", "-q", "--offline", "-p", str(py),
                           "-c", str(REPO / "requirements" / "runtime.lock"), f"{wheel}[read]"],
                          env=base, capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-3000:]
    script = (
        "import importlib.util, sys\n"
        "from catalog2vec.lakehouse import duckdb_connect, read_arrow, read_pandas, read_polars\n"
        f"root = {str(work / 'lakehouse')!r}\n"
        "items = read_arrow(root, 'bronze.catalog_items')\n"
        "con = duckdb_connect(root)\n"
        "(n_q,) = con.execute('select count(*) from bronze.quarantine').fetchone()\n"
        "reasons = read_polars(root, 'bronze.quarantine')['reason'].to_list()\n"
        "ids = read_pandas(root, 'bronze.catalog_items')['item_id'].nunique()\n"
        "missing = [m for m in ('torch', 'pyspark', 'delta', 'apache_beam') if importlib.util.find_spec(m)]\n"
        "print('READ', items.num_rows, n_q, ids, reasons, missing)\n"
    )
    run = subprocess.run([str(py), "-c", script], cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "READ 29 1 29 ['missing_item_id'] []" in run.stdout, run.stdout
