"""A spark-submit run killed mid-job (SIGKILL of the driver after its 3rd Delta commit: chunk 1's
tags + embeddings, chunk 2's tags) followed by a re-run leaves exactly one row per item."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog2vec.lakehouse import read_pandas
from tests.unit.embed.helpers import REPO, sample_ids, save_tiny_model, write_silver_images

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_killed_run_then_rerun(spark: Any, lakehouse: Path) -> None:
    import embed

    ids = sample_ids()
    write_silver_images(spark, lakehouse, ids)
    save_tiny_model(lakehouse, "m1")
    env = {
        **os.environ,
        "CATALOG2VEC_EMBED_CRASH_AFTER": "3",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [
            "spark-submit",
            "--master",
            "local[2]",
            "--driver-memory",
            "1g",
            "jobs/embed.py",
            "--lakehouse",
            str(lakehouse),
            "--model-version",
            "m1",
            "--set",
            "embed.commit_rows=128",
            "--run-id",
            "killed",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "killing the driver" in proc.stdout + proc.stderr  # spark-submit forwards the driver's stderr to stdout
    emb = read_pandas(lakehouse, "gold.item_embeddings")
    tags = read_pandas(lakehouse, "gold.item_tags")
    done = set(emb.item_id)
    assert 0 < len(done) < len(ids)  # chunk 1 committed, the rest not
    assert set(tags.item_id) > done  # chunk 2's tags were committed without its embeddings

    assert (
        embed.main(
            [
                "--lakehouse",
                str(lakehouse),
                "--model-version",
                "m1",
                "--run-id",
                "rerun",
                "--set",
                "embed.commit_rows=128",
            ]
        )
        == 0
    )
    emb = read_pandas(lakehouse, "gold.item_embeddings")
    tags = read_pandas(lakehouse, "gold.item_tags")
    assert len(emb) == len(ids) and emb.item_id.is_unique and set(emb.item_id) == set(ids)
    assert set(emb[emb.run_id == "killed"].item_id) == done  # finished items were not redone
    assert len(tags) == 10 * len(ids) and tags.groupby("item_id").size().eq(10).all()
    assert not tags.duplicated(["model_version", "item_id", "tag"]).any()
