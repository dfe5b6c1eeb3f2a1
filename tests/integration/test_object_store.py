"""The DESIGN pipeline on an object-store lakehouse: a real S3 API server on 127.0.0.1 (moto server
mode), Spark writing Delta through S3A (hadoop-aws), delta-rs / DuckDB reading through the S3 API,
and every artifact (models, checkpoints, LATEST, indexes, reports, PAN, CTR, vocab files) written by
the storage layer. Nothing may land on local disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.sample import core_sample_dir

pytestmark = [pytest.mark.slow, pytest.mark.spark]

BUCKET = "c2v-lake"
ROOT = f"s3a://{BUCKET}/lake"
RUN_ID = "s3-run"
SMALL = ["train.image_size=32", "train.epochs=1", "train.batch_size=32", "train.workers=0",
         "train.checkpoint_every=4", "similarity.epochs=2", "ctr.num_trees=10", "cluster.k=6"]
TABLES = ["bronze/catalog_items", "bronze/impressions", "silver/catalog_tokens", "silver/vocab",
          "silver/item_labels", "silver/images", "gold/item_embeddings", "gold/item_tags", "gold/item_neighbors",
          "gold/clusters", "gold/item_clusters", "gold/ctr_features", "gold/ctr_predictions", "gold/ctr_metrics"]
# columns that record *when* a row was written, not what it holds
WALL_CLOCK = {"ingested_at", "quarantined_at", "crawled_at", "created_at", "computed_at", "trained_at"}


def run_pipeline() -> dict[str, float]:
    demo = load_demo()
    pipeline = demo.steps(ROOT, RUN_ID, tuple(SMALL), impressions=4000, feature_version="s3-test", max_train=120,
                          sample=str(core_sample_dir() / "styles.csv"))  # the 384-item core keeps it cheap
    return dict(demo.run_steps(pipeline))


def load_demo() -> Any:
    """scripts/demo.py: the pipeline's job list, shared by `make demo`, this test and the benchmark."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("catalog2vec_demo", REPO / "scripts" / "demo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def snapshot() -> dict[str, Any]:
    """Every table's content (sorted, wall-clock columns dropped), read with delta-rs over S3."""
    from catalog2vec.lakehouse import read_pandas

    out = {}
    for table in TABLES:
        df = read_pandas(ROOT, table)
        df = df[[c for c in df.columns if c not in WALL_CLOCK]]
        df = df.map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, sort_keys=True, default=str))
        out[table] = sorted(map(tuple, df.to_numpy().tolist())), list(df.columns)
    return out


@pytest.fixture(scope="module")
def s3_lake(spark: Any, s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from catalog2vec import storage

    storage.apply_to_spark(spark, s3_server.settings)  # the session predates the server's port
    s3_server.create_bucket(BUCKET)
    work = tmp_path_factory.mktemp("cwd")
    old = os.getcwd()
    os.chdir(work)
    try:
        t0 = time.time()
        first = run_pipeline()
        first_wall = time.time() - t0
        snap1 = snapshot()
        t0 = time.time()
        second = run_pipeline()
        second_wall = time.time() - t0
        snap2 = snapshot()
    finally:
        os.chdir(old)
    timings = {"first": first, "first_wall_s": first_wall, "second": second, "second_wall_s": second_wall}
    print("[object-store pipeline] " + json.dumps(timings))
    return {"work": work, "snap1": snap1, "snap2": snap2, "keys": s3_server.keys(BUCKET), "timings": timings}


def test_every_table_and_artifact_is_in_the_bucket(s3_lake: dict[str, Any]) -> None:
    keys = s3_lake["keys"]
    for table in TABLES:
        assert any(k.startswith(f"lake/{table}/_delta_log/") for k in keys), table
        assert any(k.startswith(f"lake/{table}/") and k.endswith(".parquet") for k in keys), table
    from catalog2vec import models

    version = models.read_latest(ROOT)
    assert version and f"lake/models/{version}/model_card.json" in keys
    for name in ("model.pt", "vocab.parquet", "shards.json"):
        assert f"lake/models/{version}/{name}" in keys, name
    assert any(k.startswith(f"lake/models/{version}/checkpoints/ckpt-") for k in keys)
    # the neighbours job's index: written in parts by the executors, the manifest last
    assert any(k.startswith(f"lake/indexes/{version}/parts/") and k.endswith(".faiss") for k in keys)
    for prefix in (f"lake/indexes/{version}/index.json", f"lake/indexes/{version}/trained.faiss",
                   f"lake/reports/{version}/report.json", f"lake/reports/{version}/report.html",
                   f"lake/similarity/{version}/pan_card.json", f"lake/similarity/{version}/pan.pt",
                   "lake/models/ctr/s3-test/model_card.json", "lake/models/ctr/s3-test/booster.txt",
                   "lake/models/ctr/features/s3-test.json", "lake/reports/ctr/s3-test/report.html",
                   "lake/vocab/CURRENT", "lake/models/LATEST"):
        assert prefix in keys, prefix
    assert any(k.startswith("lake/vocab/") and k.endswith("/vocab.parquet") for k in keys)
    assert any(k.startswith("lake/models/ctr/s3-test/trees_lr_lr/") for k in keys)  # Spark ML through S3A


def test_nothing_was_written_to_local_disk(s3_lake: dict[str, Any]) -> None:
    leftovers = sorted(p.name for p in Path(s3_lake["work"]).iterdir())
    assert leftovers == [], leftovers  # the working directory of every job stayed empty
    for base in (REPO, Path(s3_lake["work"])):
        for bogus in ("s3a:", "s3:", "lake"):
            assert not (base / bogus).exists(), base / bogus


def test_downstream_jobs_used_the_version_named_by_latest(s3_lake: dict[str, Any]) -> None:
    from catalog2vec import models, storage
    from catalog2vec.lakehouse import duckdb_connect, read_arrow

    version = models.read_latest(ROOT)
    assert models.resolve(ROOT, "latest") == version == models.list_versions(ROOT)[0]
    card = models.read_card(ROOT, version)
    assert card["model_version"] == version and card["config"]["lakehouse"] == ROOT
    for table in ("gold/item_embeddings", "gold/item_tags", "gold/item_neighbors", "gold/item_clusters"):
        got = set(read_arrow(ROOT, table, columns=["model_version"]).column("model_version").to_pylist())
        assert got == {version}, table
    feats = read_arrow(ROOT, "gold/ctr_features", columns=["item_model_version"]) \
        if "item_model_version" in read_arrow(ROOT, "gold/ctr_features").column_names else None
    if feats is not None:
        assert set(feats.column(0).to_pylist()) <= {version, None}
    report = storage.read_json(storage.join(ROOT, "reports", version, "report.json"))
    assert report["model_version"] == version
    assert "random_weights" in report["retrieval"]  # the baseline is not skipped on an object store
    con = duckdb_connect(ROOT)  # DuckDB over delta-rs over the S3 API
    n = con.execute("select count(*) from gold.item_embeddings").fetchone()[0]
    assert n == len(read_arrow(ROOT, "silver/images", columns=["item_id"])) > 300


def test_a_second_run_leaves_the_same_tables(s3_lake: dict[str, Any]) -> None:
    snap1, snap2 = s3_lake["snap1"], s3_lake["snap2"]
    assert snap1.keys() == snap2.keys()
    for table in snap1:
        assert snap1[table][1] == snap2[table][1], table
        assert snap1[table][0] == snap2[table][0], f"{table} changed on the second run"
        assert snap1[table][0], f"{table} is empty"


def test_killed_training_resumes_from_its_checkpoint_in_the_bucket(s3_lake: dict[str, Any], s3_server: Any,
                                                                   tmp_path: Path) -> None:
    from catalog2vec import models

    version = "killed-then-resumed"
    overrides = [f"--set={s}" for s in SMALL] + ["--set=train.checkpoint_every=1", "--set=train.epochs=2"]
    cmd = [sys.executable, str(REPO / "jobs" / "train.py"), "--no-spark", "--lakehouse", ROOT, "--run-id", "kill",
           "--model-version", version, *overrides]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    prefix = f"lake/models/{version}/checkpoints/ckpt-"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not any(k.startswith(prefix) for k in s3_server.keys(BUCKET, prefix)):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    ckpts = s3_server.keys(BUCKET, prefix)
    assert ckpts, "no checkpoint reached the bucket before the kill"
    assert version not in models.list_versions(ROOT)  # a killed run publishes nothing
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    card = models.read_card(ROOT, version)
    assert card["resumed_from_step"] >= 1 and card["complete"] is True
    assert models.read_latest(ROOT) != version  # a candidate: only jobs/promote.py moves LATEST
    assert sorted(p.name for p in tmp_path.iterdir()) == []
