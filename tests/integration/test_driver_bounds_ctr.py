"""Guard: the CTR jobs hold O(k) on the driver. 200,000 synthetic impressions over 10,000 items
(with embeddings and tags) go through build_ctr_features and train_ctr in a fresh Spark session
whose ``spark.driver.maxResultSize`` is 3 MiB: any collect or ``toPandas`` of the impressions,
the items or the predictions exceeds it and fails the job; the bounded steps (PCA on
``ctr.pca_sample`` items, trees on ``ctr.tree_sample`` rows, aggregates) fit.

The jobs run in a subprocess because maxResultSize is fixed when a SparkContext starts (the
suite's session fixture is shared); the inputs are written here with that fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IMPRESSIONS = 200_000
ITEMS = 10_000
DIM = 16
MV = "mv-guard"
CAPS = ("ctr.pca_sample=2000", "ctr.tree_sample=8000", "ctr.num_trees=8", "ctr.lr_max_iter=8",
        "ctr.max_categories=200", "ctr.negative_rate=0.2")


def _write_inputs(spark, lakehouse: Path) -> None:
    """Impressions whose clicks depend on the item (a 'good' item has a high first embedding
    component and the tag ``good``) and on the site, built in Spark from ``spark.range``."""
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import bronze, gold

    items = spark.range(ITEMS).select(
        F.concat(F.lit("it"), F.col("id").cast("string")).alias("item_id"),
        (F.col("id") % 7 == 0).alias("good"),
        F.col("id"),
    )
    emb = items.select(
        F.lit(MV).alias("model_version"), "item_id", F.lit("sha").alias("sha256"),
        F.array(
            (F.when(F.col("good"), 1.5).otherwise(0.0) + F.randn(1)).cast("float"),
            *[F.randn(2 + i).cast("float") for i in range(DIM - 1)],
        ).alias("embedding"),
        F.lit(1.0).cast("float").alias("norm"), F.lit("t").alias("run_id"),
    )
    tags = items.select(
        "item_id",
        F.posexplode(F.array(
            F.when(F.col("good"), F.lit("good")).otherwise(F.lit("plain")),
            F.concat(F.lit("colour"), (F.col("id") % 5).cast("string")),
            F.concat(F.lit("cat"), (F.col("id") % 11).cast("string")),
        )).alias("pos", "tag"),
    ).select(
        F.lit(MV).alias("model_version"), "item_id", "tag", (F.lit(0.9) / (F.col("pos") + 1)).cast("float").alias(
            "probability"), (F.col("pos") + 1).cast("int").alias("rank"), F.lit("t").alias("run_id"),
    )
    item = F.col("id") * 7919 % ITEMS
    site = F.col("id") % 50
    logit = F.lit(-3.0) + F.when(item % 7 == 0, 1.6).otherwise(0.0) + F.when(site < 10, 0.8).otherwise(0.0)
    true_ctr = F.lit(1.0) / (F.lit(1.0) + F.exp(-logit))
    imps = spark.range(IMPRESSIONS).select(
        F.concat(F.lit("imp"), F.col("id").cast("string")).alias("impression_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id")).alias("ts"),
        F.concat(F.lit("it"), item.cast("string")).alias("item_id"),
        F.create_map(F.lit("site"), F.concat(F.lit("s"), site.cast("string")),
                     F.lit("hour"), (F.col("id") % 24).cast("string")).alias("features"),
        (F.rand(7) < true_ctr).cast("int").alias("click"),
        F.lit("synthetic").alias("source"),
        true_ctr.alias("true_ctr"),
        F.lit("t").alias("run_id"),
    )
    write_table(spark, imps, bronze.IMPRESSIONS, lakehouse, mode="overwrite")
    write_table(spark, emb, gold.ITEM_EMBEDDINGS, lakehouse, mode="replace_where", version=MV)
    write_table(spark, tags, gold.ITEM_TAGS, lakehouse, mode="replace_where", version=MV)
    card = lakehouse / "models" / MV / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"model_version": MV}))


DRIVER = textwrap.dedent(
    """
    import sys
    from catalog2vec.spark import get_spark
    from catalog2vec.lakehouse import read_table
    from catalog2vec.schemas import bronze

    spark = get_spark("driver-bounds-ctr", "local[2]", {
        "spark.driver.maxResultSize": "3m",
        "spark.sql.autoBroadcastJoinThreshold": "1m",
        "spark.sql.shuffle.partitions": "2",
    })
    # the limit bites: the impressions themselves do not fit through it
    try:
        read_table(spark, sys.argv[1], bronze.IMPRESSIONS).toPandas()
    except Exception as exc:
        assert "maxResultSize" in str(exc), exc
        print("control: impressions.toPandas() refused by maxResultSize")
    else:
        raise SystemExit("control failed: the impressions fit through maxResultSize")
    import build_ctr_features, train_ctr
    common = ["--lakehouse", sys.argv[1], "--run-id", "guard"] + [a for s in sys.argv[2:] for a in ("--set", s)]
    rc = build_ctr_features.main(["--source", "synthetic", "--model-version", "latest", *common])
    if rc:
        raise SystemExit(f"build_ctr_features exited {rc}")
    raise SystemExit(train_ctr.main(["--feature-version", "synthetic-mv-guard", *common]))
    """
)


def test_ctr_jobs_under_small_driver_result_limit(spark, lakehouse: Path) -> None:
    _write_inputs(spark, lakehouse)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "jobs"), os.environ.get("PYTHONPATH", "")])}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(lakehouse), *CAPS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "control: impressions.toPandas() refused" in proc.stdout

    info = json.loads((lakehouse / "models/ctr/features/synthetic-mv-guard.json").read_text())
    assert info["rows"] == IMPRESSIONS and info["with_embedding"] == IMPRESSIONS and info["with_tags"] == IMPRESSIONS
    assert info["train"] + info["validation"] + info["test"] == IMPRESSIONS
    assert abs(info["train"] - 0.7 * IMPRESSIONS) <= 1 and abs(info["validation"] - 0.15 * IMPRESSIONS) <= 1
    pca = info["pca"]
    assert pca["components"] == 8 and pca["train_items_with_embedding"] == ITEMS  # every item is in the train window
    assert pca["fitted_on_items"] == 2000  # ctr.pca_sample, by hash of item_id

    report = json.loads((lakehouse / "reports/ctr/synthetic-mv-guard/report.json").read_text())
    m = report["metrics_test"]
    assert set(m) == {"trees_lr", "lr_only", "trees_only", "trees_lr_no_visual"}
    assert all(r["rows"] == info["test"] for r in m.values())
    assert m["trees_lr"]["ne"] < 1.0 and m["trees_lr"]["auc"] > 0.6
    assert m["trees_lr"]["ne"] < m["trees_lr_no_visual"]["ne"]  # the item's embedding/tags carry the signal
    assert 0.8 <= m["trees_lr"]["calibration"] <= 1.25
    assert report["ground_truth_test"]["rows"] == info["test"]
    assert report["ground_truth_test"]["ne"] <= m["trees_lr"]["ne"] + 0.01
    assert report["trees"]["sample_rows"] == 8000  # ctr.tree_sample: the cap bit
    assert 2 <= len(report["ne_by_trees"]) <= 26 and report["ne_by_trees"][-1]["trees"] == report["trees"]["best_iteration"]
    print(f"guard: jobs subprocess {seconds:.1f} s")
