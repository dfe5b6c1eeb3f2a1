"""Real iPinYou impressions end to end: ingest (+ quarantine) -> features -> train_ctr, and the leaf
encoding UDF against LightGBM's own pred_leaf."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.shared_data, pytest.mark.slow]

FAST = ("ctr.num_trees=30", "ctr.lr_max_iter=50")


def test_bad_rows_quarantined_with_reasons(spark, lakehouse: Path, tmp_path: Path) -> None:
    import ingest_impressions
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import read_table
    from catalog2vec.schemas import bronze

    log = tmp_path / "log.csv"
    log.write_text("is_click,weekday,site\n1,2,a\n0,2,b\n,2,c\nyes,2,d\n0,9,e\n0,3,f\n")
    argv = [
        "--input",
        str(log),
        "--format",
        "csv",
        "--lakehouse",
        str(lakehouse),
        "--run-id",
        "r1",
        "--mapping",
        "is_click=click",
        "--source",
        "toylog",
    ]
    assert ingest_impressions.main(argv) == 0
    imps = read_table(spark, lakehouse, bronze.IMPRESSIONS).orderBy("ts").toPandas()
    assert imps["features"].map(lambda m: dict(m)["site"]).tolist() == ["a", "b", "f"]
    assert imps["click"].tolist() == [1, 0, 0] and imps["true_ctr"].isna().all()
    # derived ts: 2013-06-02 + weekday days + row index seconds
    assert (
        str(imps["ts"].iloc[0]) == "2013-06-04 00:00:00" and str(imps["ts"].iloc[2]) == "2013-06-05 00:00:05"
    )
    q = read_table(spark, lakehouse, bronze.QUARANTINE).where(F.col("job") == "ingest_impressions").toPandas()
    assert sorted(q["reason"]) == ["invalid_value", "invalid_value", "missing_label"]
    assert (
        ingest_impressions.main([*argv[:-4], "--mapping", "nope=click"]) == 2
    )  # unknown column: clear error
    assert ingest_impressions.main(argv) == 0  # idempotent
    assert read_table(spark, lakehouse, bronze.IMPRESSIONS).count() == 3


def test_ipinyou_trees_lr_beats_lr_only_and_is_calibrated(spark, lakehouse: Path, shared_data: Path) -> None:
    import build_ctr_features
    import ingest_impressions
    import lightgbm as lgb
    import train_ctr
    from pyspark.sql import functions as F

    from catalog2vec.ctr.encoding import FeatureSpec, select_columns, to_matrix, vector_udf
    from catalog2vec.lakehouse import read_table
    from catalog2vec.schemas import bronze, ctr

    common = ["--lakehouse", str(lakehouse), "--run-id", "t1", *[x for s in FAST for x in ("--set", s)]]
    assert (
        ingest_impressions.main(
            [
                "--input",
                str(shared_data / "ipinyou_train.csv"),
                "--format",
                "csv",
                "--source",
                "ipinyou",
                *common,
            ]
        )
        == 0
    )
    imps = read_table(spark, lakehouse, bronze.IMPRESSIONS)
    assert imps.count() == 26773 and imps.agg(F.sum("click")).first()[0] == 255
    assert len(imps.first()["features"]) == 16
    assert build_ctr_features.main(["--source", "ipinyou", *common]) == 0
    assert train_ctr.main(["--feature-version", "ipinyou-raw", *common]) == 0

    report = json.loads((lakehouse / "reports/ctr/ipinyou-raw/report.json").read_text())
    m = report["metrics_test"]
    assert report["splits"]["test"]["clicks"] > 20
    assert m["trees_lr"]["ne"] <= m["lr_only"]["ne"]
    assert m["trees_lr"]["ne"] < 1.0
    assert 0.8 <= m["trees_lr"]["calibration"] <= 1.25
    assert 0.8 <= m["trees_only"]["calibration"] <= 1.25  # trees trained on down-sampled data, re-calibrated
    assert m["trees_only"]["ne_relative_to_trees"] == pytest.approx(1.0)
    for f in ("report.md", "report.html", "calibration.png", "ne_by_trees.png"):
        assert (lakehouse / "reports/ctr/ipinyou-raw" / f).stat().st_size > 200
    assert "| trees_lr |" in (lakehouse / "reports/ctr/ipinyou-raw/report.md").read_text()
    mdir = lakehouse / "models/ctr/ipinyou-raw"
    card = json.loads((mdir / "model_card.json").read_text())
    assert len(card["feature_spec"]["categorical"]) == 16 and "trees_lr" in card["metrics_test"]
    preds = read_table(spark, lakehouse, ctr.CTR_PREDICTIONS).groupBy("model").count().toPandas()
    assert set(preds["model"]) == {"trees_lr", "lr_only", "trees_only"}
    assert (preds["count"] == report["splits"]["test"]["rows"]).all()
    assert read_table(spark, lakehouse, ctr.CTR_METRICS).count() == 3

    # the leaf one-hot from the pandas UDF equals LightGBM's own pred_leaf on the same rows
    booster = lgb.Booster(model_file=str(mdir / "booster.txt"))
    spec = FeatureSpec.from_dict(json.loads((mdir / "feature_spec.json").read_text()))
    rows = read_table(spark, lakehouse, ctr.CTR_FEATURES).orderBy("impression_id").limit(300)
    enc = vector_udf(spark, spec, booster, with_raw=False)
    got = rows.select(
        select_columns(rows, spec).alias("f"), enc(select_columns(rows, spec)).alias("v")
    ).toPandas()
    x = to_matrix(pd.json_normalize(got["f"].map(lambda r: r.asDict() if hasattr(r, "asDict") else r)), spec)
    leaves = booster.predict(x, pred_leaf=True)
    sizes = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for i, v in enumerate(got["v"]):
        assert v.size == sum(sizes)
        assert v.indices.tolist() == (leaves[i] + offsets).tolist()
        assert set(v.values.tolist()) == {1.0}
