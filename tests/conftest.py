"""Shared fixtures: ONE session-scoped local Spark + Delta session (a JVM start costs ~5 s),
a fresh lakehouse directory per test, and paths to the bundled and shared real data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sample import core_sample_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = core_sample_dir()  # the 384-item core of the bundled sample (tests/sample.py)
SHARED_DATA = Path(os.environ.get("CATALOG2VEC_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # tests never phone home
os.environ.setdefault("DO_NOT_TRACK", "true")


def _test_spark_conf_dir() -> str:
    """The project's SPARK_CONF_DIR (conf/spark, written by make setup; an older setup's copy in
    pyspark's conf/ otherwise) copied to a temporary directory with the Spark UI and the console
    progress bar off: every Spark of the suite (in-process sessions, spark-submit, cluster
    executors) reads it, and parallel test JVMs do not race for UI ports."""
    import shutil
    import tempfile

    import pyspark

    src = Path(os.environ.get("SPARK_CONF_DIR") or REPO / "conf" / "spark")
    if not (src / "spark-defaults.conf").is_file():
        src = Path(pyspark.__file__).parent / "conf"
    dst = Path(tempfile.mkdtemp(prefix="catalog2vec-spark-conf-"))
    for f in src.glob("*") if src.is_dir() else []:
        if f.is_file():
            shutil.copy2(f, dst / f.name)
    with (dst / "spark-defaults.conf").open("a") as fh:
        fh.write("\n# tests only (tests/conftest.py)\nspark.ui.enabled false\nspark.ui.showConsoleProgress false\n")
    return str(dst)


os.environ["SPARK_CONF_DIR"] = _test_spark_conf_dir()

MYNTRA_MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from catalog2vec.spark import get_spark

    session = get_spark("catalog2vec-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A real S3 API server on 127.0.0.1 (moto server mode) for the whole session; its endpoint and
    keys are exported as the usual ``AWS_*`` variables, so Spark (S3A), delta-rs, s3fs and child
    processes (spark-submit, TorchDistributor workers) all reach it."""
    from catalog2vec import storage
    from tests.s3server import running_s3_server

    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_REGION", "CATALOG2VEC_S3_PATH_STYLE")}
    with running_s3_server() as server:
        os.environ.update(server.settings.environment())
        storage.configure(None)  # drop cached filesystems built before the endpoint existed
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            storage.configure(None)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Spark standalone master + two 1-core workers on 127.0.0.1 (separate JVMs, started from the
    installed pyspark by ``catalog2vec.standalone``) for one test module; stopped by PID after it."""
    from catalog2vec import standalone as cl

    run = tmp_path_factory.mktemp("cluster")
    try:
        info = cl.start(run, workers=2, cores=1, memory="1500m", timeout=240)
    except cl.ClusterError as exc:
        if "java is not available" in str(exc):
            pytest.skip(f"standalone cluster needs Java: {exc}")
        raise
    yield info
    cl.stop(run)


@pytest.fixture()
def lakehouse(tmp_path: Path) -> Path:
    root = tmp_path / "lakehouse"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set CATALOG2VEC_SHARED_DATA); skipping")
    return SHARED_DATA


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


def make_config(lakehouse: Path, *overrides: str) -> Any:
    from catalog2vec.config import load_config

    return load_config(None, list(overrides), lakehouse=str(lakehouse), run_id="test-run")
