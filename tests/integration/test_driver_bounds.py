"""The driver holds O(k): neighbours (IVF path) and clustering of a catalog too big to collect.

A synthetic ``gold.item_embeddings`` of 100,000 clustered 32-d vectors is written in Spark (12.8 MB
of floats). A fresh Spark session in a child process gets ``spark.driver.maxResultSize=4m``: the
test first shows that collecting the embeddings fails there, then runs ``jobs/neighbors.py``
(``retrieval.exact_max_items`` below the catalog size, so the IVF index is trained on a sample,
filled and searched in the executors) and ``jobs/cluster.py`` through their ``main`` in that session;
any O(items) collect in either job would fail the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 100_000
DIM = 32
CENTERS = 200
K = 10
VERSION = "synthetic"

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    sys.path[:0] = [{repo!r}, {jobs!r}]
    from catalog2vec.spark import get_spark

    spark = get_spark("driver-bounds", "local[2]", {{"spark.driver.maxResultSize": "4m"}})
    out = {{}}
    try:  # the guard has teeth: the embeddings do not fit through the driver
        spark.read.format("delta").load({table!r}).select("embedding").toPandas()
        out["collect"] = "succeeded"
    except Exception as exc:
        text = str(exc)
        out["collect"] = "failed: maxResultSize" if "maxResultSize" in text else "failed: " + text[-2000:]
    import neighbors, cluster

    common = ["--lakehouse", {root!r}, "--model-version", {version!r}]
    t0 = time.perf_counter()
    out["neighbors_rc"] = neighbors.main([*common, "--run-id", "bounds-nb", "-k", "{k}",
        "--set", "retrieval.exact_max_items=20000", "--set", "retrieval.train_sample=10000",
        "--set", "retrieval.recall_queries=300"])
    t1 = time.perf_counter()
    out["cluster_rc"] = cluster.main([*common, "--run-id", "bounds-cl", "--set", "cluster.k=8",
        "--set", "cluster.prototypes=3", "--set", "cluster.max_iter=10"])
    out["seconds"] = {{"neighbors": round(t1 - t0, 1), "cluster": round(time.perf_counter() - t1, 1)}}
    out["driver_python_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("RESULT " + json.dumps(out))
    spark.stop()
    """
)


@pytest.fixture(scope="module")
def big_lakehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200k clustered unit-ish vectors: CENTERS directions plus Gaussian noise, made in Spark."""
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import gold

    root = tmp_path_factory.mktemp("bounds") / "lakehouse"
    center = (F.col("id") * 7919) % CENTERS
    vec = F.array(*[(F.sin(center * (j + 1) * 0.37 + j) + 0.35 * F.randn(seed=j)).cast("float") for j in range(DIM)])
    df = spark.range(N_ITEMS, numPartitions=4).select(
        F.lit(VERSION).alias("model_version"),
        F.format_string("i%07d", F.col("id")).alias("item_id"),
        F.lit("0" * 64).alias("sha256"),
        vec.alias("embedding"),
        F.lit(1.0).cast("float").alias("norm"),
        F.lit("synthetic").alias("run_id"),
    )
    write_table(spark, df, gold.ITEM_EMBEDDINGS, root, mode="append")
    card = root / "models" / VERSION / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"model_version": VERSION, "created_at": "2026-01-01T00:00:00Z"}))
    return root


def test_neighbors_and_cluster_keep_the_driver_at_o_k(big_lakehouse: Path) -> None:
    from catalog2vec.lakehouse import read_arrow

    root = big_lakehouse
    code = CHILD.format(repo=str(REPO), jobs=str(REPO / "jobs"), root=str(root), version=VERSION, k=K,
                        table=str(root / "gold" / "item_embeddings"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    print(f"driver bounds: {out}, child wall {wall:.1f}s")
    assert out["collect"].startswith("failed") and "maxResultSize" in out["collect"], out["collect"]
    assert out["neighbors_rc"] == 0 and out["cluster_rc"] == 0, proc.stderr[-6000:]

    nb = json.loads((root / "_runs" / "bounds-nb" / "neighbors.json").read_text())["counts"]
    print(f"neighbors counts: {nb}")
    assert nb["index"] == "ivf" and nb["items_indexed"] == N_ITEMS and nb["quarantined"] == 0
    assert nb["neighbor_rows"] == N_ITEMS * K
    assert nb["train_sample"] <= 10_000 and nb["nlist"] == nb["train_sample"] // 39  # 4·sqrt(N) capped by the sample
    assert 1 <= nb["nprobe"] <= nb["nlist"] and nb["recall_queries"] == 300
    assert nb["recall_on_sample"] >= 0.95 and nb["recall_at_k"] >= 0.9, nb
    t = read_arrow(root, "gold/item_neighbors", columns=["item_id", "rank"])
    assert t.num_rows == N_ITEMS * K
    assert len(set(t.column("item_id").to_pylist())) == N_ITEMS
    assert sorted(set(t.column("rank").to_pylist())) == list(range(1, K + 1))

    cl = json.loads((root / "_runs" / "bounds-cl" / "cluster.json").read_text())["counts"]
    print(f"cluster counts: {cl}")
    assert cl["k"] == 8 and sum(cl["sizes"]) == N_ITEMS == cl["items_clustered"]
    assert cl["sizes"] == sorted(cl["sizes"], reverse=True)
    clusters = read_arrow(root, "gold/clusters", columns=["cluster", "size", "prototypes"])
    assert clusters.num_rows == 8 and all(len(p) == 3 for p in clusters.column("prototypes").to_pylist())
    assert read_arrow(root, "gold/item_clusters", columns=["item_id"]).num_rows == N_ITEMS
