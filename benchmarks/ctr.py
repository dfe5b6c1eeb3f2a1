"""CTR benchmark: tree stage LightGBM vs Spark MLlib GBTClassifier (same trees and depth), and the
end-to-end train_ctr time and driver peak memory, on SYNTHETIC impressions (catalog2vec.ctr.simulate).

Features (24): 6 categorical context fields + item_id code + 9 tag probabilities + 8 embedding-PCA-like
numerics (synthetic items: colour/category drawn at random, embeddings = noise + a colour component).

  .venv/bin/python benchmarks/ctr.py --rows 1000000 --trees 50 --depth 6 --gbt-rows 100000 --e2e-rows 200000

MLlib GBT is run on --gbt-rows rows; if that is fewer than --rows its time is ALSO reported
extrapolated linearly to --rows, labelled as an extrapolation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, list[str], list[str]]:
    from catalog2vec.ctr.simulate import SimulationParams, simulate

    rng = np.random.default_rng(seed)
    n_items = 2000
    colours = np.array(["red", "blue", "black", "white", "green", "pink", "grey", "navy", "brown"])
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n_items)],
        "color": colours[rng.integers(0, len(colours), n_items)],
        "category": np.array(["tshirt", "shoe", "dress", "bag", "watch"])[rng.integers(0, 5, n_items)],
    })
    imp = simulate(items, SimulationParams(n_impressions=rows, seed=seed, colour_strength=1.2))
    it = imp["item_id"].str[1:].astype(int).to_numpy()
    cat_cols = ["user_segment", "device", "position", "site", "hour", "weekday", "item_id"]
    X = pd.DataFrame({c: pd.factorize(imp[c], sort=True)[0].astype(float) for c in cat_cols})
    onehot = (items["color"].to_numpy()[:, None] == colours[None, :]).astype(float)
    tag = np.clip(onehot * 0.8 + rng.normal(0, 0.1, onehot.shape), 0, 1)
    emb = rng.normal(0, 1, (n_items, 8)) + onehot @ rng.normal(0, 2, (len(colours), 8))
    num_cols = [f"tag:{c}" for c in colours] + [f"emb_pca_{i}" for i in range(8)]
    for j, c in enumerate(num_cols):
        X[c] = (tag[:, j] if j < len(colours) else emb[:, j - len(colours)])[it]
    return X, imp["click"].to_numpy(), cat_cols, num_cols


def bench_lightgbm(X: pd.DataFrame, y: np.ndarray, cats: list[str], trees: int, depth: int) -> float:
    import lightgbm as lgb

    params = {"objective": "binary", "num_leaves": 2**depth, "max_depth": depth, "learning_rate": 0.1,
              "verbose": -1, "seed": 0, "force_row_wise": True}
    t0 = time.time()
    lgb.train(params, lgb.Dataset(X.to_numpy(), y, categorical_feature=list(range(len(cats)))), trees)
    return time.time() - t0


def bench_mllib_gbt(spark, X: pd.DataFrame, y: np.ndarray, trees: int, depth: int) -> float:  # type: ignore[no-untyped-def]
    from pyspark.ml.classification import GBTClassifier
    from pyspark.ml.feature import VectorAssembler

    pdf = X.rename(columns=lambda c: c.replace(":", "_")).assign(label=y.astype(float))
    sdf = spark.createDataFrame(pdf)
    feats = [c for c in pdf.columns if c != "label"]
    data = VectorAssembler(inputCols=feats, outputCol="features").transform(sdf).select("features", "label").cache()
    data.count()
    t0 = time.time()
    GBTClassifier(maxIter=trees, maxDepth=depth, stepSize=0.1, seed=0, maxBins=64).fit(data)
    sec = time.time() - t0
    data.unpersist()
    return sec


def bench_e2e(spark, rows: int, trees: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """gold.ctr_features written directly from simulated data, then train_ctr.train_ctr."""
    from catalog2vec.config import load_config
    from catalog2vec.ctr.train import peak_rss_mib, train_ctr
    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import ctr

    X, y, cats, nums = make_data(rows, seed=1)
    n = len(y)
    split = np.where(np.arange(n) < 0.7 * n, "train", np.where(np.arange(n) < 0.85 * n, "validation", "test"))
    pdf = pd.DataFrame({
        "feature_version": "bench", "impression_id": [f"b{i}" for i in range(n)],
        "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
        "split": split, "click": y.astype(np.int32), "item_id": None, "source": "synthetic",
        "categorical": [dict(zip(cats, map(lambda v: str(int(v)), r), strict=True)) for r in X[cats].to_numpy()],
        "numeric": [dict(zip(nums, map(float, r), strict=True)) for r in X[nums].to_numpy()], "run_id": "bench",
    })
    with tempfile.TemporaryDirectory() as lh:
        write_table(spark, spark.createDataFrame(pdf, ctr.CTR_FEATURES.spark_schema()), ctr.CTR_FEATURES, lh,
                    mode="replace_where", version="bench")
        cfg = load_config(None, [f"ctr.num_trees={trees}", "ctr.ablate_visual=false"], lakehouse=lh, run_id="bench")
        t0 = time.time()
        report = train_ctr(spark, cfg, "bench")
        return {"rows": n, "seconds": time.time() - t0, "driver_peak_rss_mib": peak_rss_mib(),
                "ne_trees_lr": report["metrics_test"]["trees_lr"]["ne"],
                "ne_lr_only": report["metrics_test"]["lr_only"]["ne"],
                "ne_trees_only": report["metrics_test"]["trees_only"]["ne"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--gbt-rows", type=int, default=100_000, help="rows for MLlib GBT (subsample)")
    ap.add_argument("--e2e-rows", type=int, default=200_000, help="rows for end-to-end train_ctr (0 = skip)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    from catalog2vec.spark import get_spark

    X, y, cats, _nums = make_data(args.rows)
    print(f"[bench] {len(y)} SYNTHETIC impressions, {X.shape[1]} features, CTR {y.mean():.4f}")
    lgb_s = bench_lightgbm(X, y, cats, args.trees, args.depth)
    print(f"[bench] LightGBM {args.trees} trees depth {args.depth} on {len(y)} rows: {lgb_s:.1f}s")
    spark = get_spark("bench-ctr", "local[2]")
    g = min(args.gbt_rows, len(y))
    gbt_s = bench_mllib_gbt(spark, X.iloc[:g], y[:g], args.trees, args.depth)
    lgb_sub = bench_lightgbm(X.iloc[:g], y[:g], cats, args.trees, args.depth)
    res = {"rows": len(y), "features": X.shape[1], "trees": args.trees, "depth": args.depth,
           "lightgbm_s": lgb_s, "gbt_rows": g, "mllib_gbt_s": gbt_s, "lightgbm_same_rows_s": lgb_sub,
           "ratio_same_rows": gbt_s / lgb_sub}
    print(f"[bench] same {g} rows: MLlib GBTClassifier {gbt_s:.1f}s vs LightGBM {lgb_sub:.1f}s -> "
          f"ratio {gbt_s / lgb_sub:.1f}x")
    if g < len(y):
        res["mllib_gbt_extrapolated_s"] = gbt_s * len(y) / g
        print(f"[bench] EXTRAPOLATED (linear in rows) MLlib GBT on {len(y)} rows: {gbt_s * len(y) / g:.0f}s "
              f"vs LightGBM measured {lgb_s:.1f}s -> ratio {gbt_s * len(y) / g / lgb_s:.1f}x")
    if args.e2e_rows:
        res["e2e"] = bench_e2e(spark, args.e2e_rows, args.trees)
        print(f"[bench] end-to-end train_ctr on {res['e2e']['rows']} rows: {res['e2e']['seconds']:.0f}s, "
              f"driver peak RSS {res['e2e']['driver_peak_rss_mib']:.0f} MiB")
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
