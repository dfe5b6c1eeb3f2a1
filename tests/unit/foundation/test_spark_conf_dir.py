"""Spark's settings live in the project's SPARK_CONF_DIR (conf/spark, exported by the Makefile),
never in site-packages; the Spark UI and the console progress bar keep Spark's defaults (on) outside
the tests, and the suite turns them off in its own copy (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog2vec import spark
from tests.conftest import REPO


def test_defaults_are_written_into_spark_conf_dir_not_site_packages(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = spark.spark_home() / "conf" / "spark-defaults.conf"
    before = site.stat().st_mtime_ns if site.exists() else None
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert spark.conf_dir() == tmp_path and spark.jars_manifest() == tmp_path / "catalog2vec-jars.txt"
    jar = tmp_path / "io.delta_delta-spark_4.2_2.13-4.4.0.jar"
    jar.write_bytes(b"")
    path = spark.install_spark_defaults([str(jar)])
    assert path == tmp_path / "spark-defaults.conf" and (tmp_path / "log4j2.properties").is_file()
    lines = dict(ln.split(" ", 1) for ln in path.read_text().splitlines() if ln and not ln.startswith("#"))
    assert lines["spark.sql.catalog.spark_catalog"] == spark.DELTA_CATALOG
    assert lines["spark.driver.extraClassPath"] == str(jar) == lines["spark.executor.extraClassPath"]
    assert not [k for k in lines if k.startswith("spark.ui.")]  # UI and progress bar: Spark's defaults (on)
    assert (site.stat().st_mtime_ns if site.exists() else None) == before  # site-packages untouched
    monkeypatch.delenv("SPARK_CONF_DIR")
    assert spark.conf_dir() == spark.spark_home() / "conf"


def test_library_defaults_leave_the_ui_on_and_the_makefile_exports_conf_spark() -> None:
    assert not [k for k in spark.LOCAL_DEFAULTS if k.startswith("spark.ui.")]
    assert "export SPARK_CONF_DIR := $(abspath conf/spark)" in (REPO / "Makefile").read_text()


def test_the_suite_runs_with_the_ui_and_progress_bar_off() -> None:
    conf = Path(os.environ["SPARK_CONF_DIR"]) / "spark-defaults.conf"
    text = conf.read_text()
    assert "spark.ui.enabled false" in text and "spark.ui.showConsoleProgress false" in text
    assert "spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension" in text  # the project's settings too
