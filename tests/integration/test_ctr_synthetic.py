"""SYNTHETIC impressions over the sample catalog (clicks depend on the item's true colour): adding
tag/embedding features lowers NE; simulate -> features -> train through the jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _write_catalog_and_gold(spark, lakehouse: Path, examples_dir: Path, mv: str) -> None:
    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import bronze, gold

    styles = pd.read_csv(examples_dir / "styles.csv", dtype=str)
    now = pd.Timestamp("2026-01-01", tz="UTC")
    cat = pd.DataFrame(
        {
            "item_id": styles["id"],
            "title": styles["productDisplayName"],
            "description": None,
            "category": styles["articleType"],
            "brand": None,
            "color": styles["baseColour"],
            "gender": styles["gender"],
            "image_uri": None,
            "url": None,
            "source": "styles",
            "crawled_at": now,
            "extra": [{} for _ in range(len(styles))],
            "record_sha256": "x",
            "run_id": "t",
            "ingested_at": now,
        }
    )
    write_table(
        spark,
        spark.createDataFrame(cat, bronze.CATALOG_ITEMS.spark_schema()),
        bronze.CATALOG_ITEMS,
        lakehouse,
        mode="overwrite",
    )
    # stand-in for the embedding job: tags from the colour/article words (+ a noise tag), and
    # embeddings = random + a colour-informative component
    rng = np.random.default_rng(0)
    tags, embs = [], []
    colours = sorted(styles["baseColour"].fillna("unknown").str.lower().unique())
    for _, r in styles.iterrows():
        colour = str(r["baseColour"]).lower() if isinstance(r["baseColour"], str) else "unknown"
        words = [colour.replace(" ", "_"), *str(r["articleType"]).lower().split(), f"noise{rng.integers(5)}"]
        for rank, w in enumerate(dict.fromkeys(words), start=1):
            tags.append((mv, r["id"], w, float(0.9 / rank), rank, "t"))
        e = rng.normal(0, 1, 32)
        e[colours.index(colour) % 32] += 4.0
        embs.append((mv, r["id"], "sha", e.astype(np.float32).tolist(), float(np.linalg.norm(e)), "t"))
    for spec, rows in ((gold.ITEM_TAGS, tags), (gold.ITEM_EMBEDDINGS, embs)):
        write_table(spark, spark.createDataFrame(rows, spec.spark_schema()), spec, lakehouse,
                    mode="replace_where", version=mv)
    card = lakehouse / "models" / mv / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"model_version": mv}))


def test_visual_features_lower_ne_on_synthetic(spark, lakehouse: Path, examples_dir: Path) -> None:
    import build_ctr_features
    import simulate_impressions
    import train_ctr

    from catalog2vec.lakehouse import read_table
    from catalog2vec.schemas import bronze, ctr

    mv = "mv-test"
    _write_catalog_and_gold(spark, lakehouse, examples_dir, mv)
    common = [
        "--lakehouse",
        str(lakehouse),
        "--run-id",
        "t1",
        "--set",
        "ctr.num_trees=40",
        "--set",
        "ctr.lr_max_iter=50",
    ]
    assert simulate_impressions.main(["--impressions", "40000", "--colour-strength", "1.5", *common]) == 0
    imps = read_table(spark, lakehouse, bronze.IMPRESSIONS)
    assert imps.count() == 40000 and {r[0] for r in imps.select("source").distinct().collect()} == {
        "synthetic"
    }
    assert build_ctr_features.main(["--source", "synthetic", "--model-version", "latest", *common]) == 0
    feats = read_table(spark, lakehouse, ctr.CTR_FEATURES)
    row = feats.where("item_id IS NOT NULL").first()
    assert {k for k in row["numeric"] if k.startswith("emb_pca_")} == {f"emb_pca_{i}" for i in range(8)}
    assert any(k.startswith("tag:") for k in row["numeric"]) and "item_id" in row["categorical"]
    fv = f"synthetic-{mv}"
    uri = f"sqlite:///{lakehouse.parent / 'mlflow.db'}"  # local MLflow tracking store + registry
    assert train_ctr.main(["--feature-version", fv, *common, "--set", "ctr.mlflow=true",
                           "--set", f'mlflow.tracking_uri="{uri}"',
                           "--set", f'mlflow.artifact_location="{lakehouse.parent / "mlartifacts"}"']) == 0
    report = json.loads((lakehouse / "reports/ctr" / fv / "report.json").read_text())
    m = report["metrics_test"]
    assert report["synthetic"] is True
    assert m["trees_lr"]["ne"] < m["trees_lr_no_visual"]["ne"]  # visual features lower NE
    assert report["visual_features_effect"]["improved"] is True
    assert report["ground_truth_test"]["ne"] <= m["trees_lr"]["ne"] + 0.01  # nothing beats the known truth
    assert m["trees_lr"]["ne"] < 1.0 and 0.8 <= m["trees_lr"]["calibration"] <= 1.25
    assert "SYNTHETIC" in (lakehouse / "reports/ctr" / fv / "report.md").read_text()
    html = (lakehouse / "reports/ctr" / fv / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "src='calibration.png'" not in html  # self-contained

    # tracked in MLflow: params, every model's test metrics, NE by trees, card, LR dirs, booster registered
    import lightgbm as lgb
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias("catalog2vec-ctr", "champion")
    assert version.tags["catalog2vec.model_version"] == fv and version.tags["catalog2vec.kind"] == "ctr"
    run = client.get_run(version.run_id)
    assert run.data.params["num_trees"] == "40" and run.data.params["feature_version"] == fv
    for name in ("trees_lr", "lr_only", "trees_only", "trees_lr_no_visual"):
        assert run.data.metrics[f"{name}.ne"] == pytest.approx(m[name]["ne"])
    assert len(client.get_metric_history(run.info.run_id, "trees_only.ne_by_trees")) == len(report["ne_by_trees"])
    assert {"model_card.json", "report.json", "trees_lr_lr", "lr_only_lr"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}
    mlflow.set_tracking_uri(uri)
    logged = mlflow.lightgbm.load_model("models:/catalog2vec-ctr@champion")
    local = lgb.Booster(model_file=str(lakehouse / "models/ctr" / fv / "booster.txt"))
    x = np.random.default_rng(0).normal(size=(50, local.num_feature()))
    np.testing.assert_allclose(logged.predict(x), local.predict(x))
