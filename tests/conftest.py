"""Shared fixtures: ONE session-scoped local Spark + Delta session (a JVM start costs ~5 s),
a fresh lakehouse directory per test, and paths to the bundled and shared real data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"
SHARED_DATA = Path(os.environ.get("CATALOG2VEC_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

MYNTRA_MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from catalog2vec.spark import get_spark

    session = get_spark("catalog2vec-tests", master="local[2]")
    yield session
    session.stop()


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
