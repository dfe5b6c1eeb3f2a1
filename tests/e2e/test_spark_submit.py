"""Jobs run through the real spark-submit script, as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MYNTRA_MAPPING, REPO

SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def test_help_documents_every_flag():
    out = subprocess.run(
        [str(SPARK_SUBMIT), "jobs/ingest_catalog.py", "--help"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for flag in ("--input", "--format", "--mapping", "--source", "--image-template", "--lakehouse", "--config", "--run-id", "--set"):
        assert flag in out.stdout


@pytest.mark.slow
def test_ingest_through_spark_submit(tmp_path, examples_dir):
    lakehouse = tmp_path / "lh"
    cmd = [
        str(SPARK_SUBMIT), "--master", "local[2]", "jobs/ingest_catalog.py",
        "--input", str(examples_dir / "styles.csv"), "--format", "csv", "--lakehouse", str(lakehouse),
        "--mapping", MYNTRA_MAPPING, "--image-template", "images/{item_id}.jpg",
    ]
    out = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "read=384 written=384 quarantined=0 duplicates=0" in out.stdout
    from catalog2vec.lakehouse import read_arrow
    from catalog2vec.schemas import bronze

    assert read_arrow(lakehouse, bronze.CATALOG_ITEMS).num_rows == 384


def test_bad_arguments_exit_2_with_message(tmp_path):
    out = subprocess.run(
        [str(SPARK_SUBMIT), "jobs/ingest_catalog.py", "--input", str(tmp_path / "none*.csv"), "--format", "csv",
         "--lakehouse", str(tmp_path / "lh")],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2
    assert "no input files match" in out.stdout + out.stderr  # spark-submit pipes python stderr to stdout
