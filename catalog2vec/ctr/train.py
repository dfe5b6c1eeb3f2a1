"""Train the Facebook-style CTR model (He et al. 2014) and its baselines in one run.

1. ``FeatureSpec`` learned on the train window (``catalog2vec.ctr.encoding``).
2. **trees**: LightGBM on the train window with negatives down-sampled at rate ``w``
   (``ctr.negative_rate``), early stopping on the (equally down-sampled) validation window;
   the booster is cut at its best iteration. The sample is the only per-row data on the driver
   and is capped at ``ctr.tree_sample`` rows (a seeded hash of impression_id past the cap).
3. **trees+LR**: every training row is encoded by the leaf it reaches in each tree (one-hot
   ``SparseVector`` from a pandas UDF with the booster broadcast once), optionally followed by the
   raw one-hot features (``ctr.lr_with_raw``), and Spark MLlib ``LogisticRegression`` is fitted on
   ALL training rows (or a down-sampled set when ``ctr.lr_negative_rate < 1``, then re-calibrated).
4. **baselines**, same run: ``lr_only`` (MLlib LR on the raw one-hot features) and ``trees_only``
   (the booster's probability re-calibrated with ``q = p / (p + (1-p)/w)``); plus
   ``trees_lr_no_visual`` (trees+LR without tag/embedding features) when the features have any.
5. Metrics on the TEST window: NE, calibration, AUC, log loss, and Table 1 (NE ÷ NE of trees only),
   as Spark aggregates over the predictions (the AUC an exact rank sum), the calibration deciles
   and the NE-by-trees curve likewise: the driver holds O(models × points), not O(test rows).

Outputs: ``<lakehouse>/models/ctr/<version>/`` (booster.txt, lr_model/, model_card.json, …),
``gold.ctr_predictions`` and ``gold.ctr_metrics`` (replaced per version), and a report
(report.json / report.md / report.html, calibration.png, ne_by_trees.png) under
``<lakehouse>/reports/ctr/<version>/``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from catalog2vec import layout, models, storage, tracking
from catalog2vec.config import Config
from catalog2vec.ctr.encoding import (
    FeatureSpec,
    learn_spec,
    select_columns,
    to_matrix,
    tree_curve_udf,
    tree_prob_udf,
    vector_udf,
)
from catalog2vec.ctr.metrics import calibration_bins, evaluate_frame, negative_downsample
from catalog2vec.ctr.report import (
    calibration_plot,
    ne_curve_plot,
    report_html,
    report_markdown,
)
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, table_exists, write_table
from catalog2vec.lakehouse.sampling import cap_by_hash
from catalog2vec.schemas import bronze, ctr

if TYPE_CHECKING:
    import lightgbm as lgb
    from pyspark.ml.classification import LogisticRegressionModel
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

MODELS = ("trees_lr", "lr_only", "trees_only", "trees_lr_no_visual")


def peak_rss_mib() -> float:
    """Peak resident memory of this (driver) process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fit_trees(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    n_categorical: int,
    cfg: Config,
    feature_names: list[str],
) -> tuple[lgb.Booster, dict[str, Any]]:
    """LightGBM with early stopping on validation; returns the booster cut at its best iteration."""
    import lightgbm as lgb

    c = cfg.ctr
    params = {
        "objective": "binary",
        "num_leaves": c.num_leaves,
        "max_depth": c.max_depth,
        "learning_rate": c.learning_rate,
        "min_data_in_leaf": c.min_data_in_leaf,
        "seed": c.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        "metric": "binary_logloss",
    }
    names = [f"f{i}" for i in range(len(feature_names))]  # LightGBM forbids ':' etc. in names
    cats = list(range(n_categorical))
    dtrain = lgb.Dataset(x_train, y_train, feature_name=names, categorical_feature=cats, free_raw_data=False)
    dvalid = lgb.Dataset(x_valid, y_valid, reference=dtrain, categorical_feature=cats)
    evals: dict[str, Any] = {}
    t0 = time.time()
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=c.num_trees,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(c.early_stopping_rounds, verbose=False), lgb.record_evaluation(evals)],
    )
    seconds = time.time() - t0
    best = int(booster.best_iteration or booster.num_trees())
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return booster, {
        "best_iteration": best,
        "trained_rounds": len(evals.get("validation", {}).get("binary_logloss", [])),
        "train_seconds": seconds,
        "validation_logloss": evals.get("validation", {}).get("binary_logloss", []),
    }


def _fit_lr(train_vec: DataFrame, cfg: Config) -> LogisticRegressionModel:
    from pyspark.ml.classification import LogisticRegression

    c = cfg.ctr
    lr = LogisticRegression(
        featuresCol="v",
        labelCol="label",
        regParam=c.lr_reg,
        elasticNetParam=c.lr_elastic_net,
        maxIter=c.lr_max_iter,
        standardization=False,  # one-hot inputs: plain L2 on the weights (regParam = ctr.lr_reg)
    )
    return lr.fit(train_vec)


def _lr_predict(model: LogisticRegressionModel, vec: DataFrame, w: float) -> DataFrame:
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    out = model.transform(vec).select("impression_id", "ts", "click", vector_to_array(F.col("probability"))[1].alias("p"))
    if w < 1.0:
        out = out.withColumn("p", F.col("p") / (F.col("p") + (1 - F.col("p")) / F.lit(w)))
    return out


@dataclass
class CtrData:
    """The feature version's rows (cached), split into windows, with per-split counts."""

    df: DataFrame
    train: DataFrame
    test: DataFrame
    split_counts: dict[str, tuple[int, int]]
    sources: list[str]


@dataclass
class CtrModels:
    """What :func:`fit_models` fitted: the trees (and the no-visual ablation), the LRs, test predictions."""

    spec: FeatureSpec
    booster: lgb.Booster
    booster_nv: lgb.Booster | None
    tree_info: dict[str, Any]
    lr_models: dict[str, LogisticRegressionModel]
    preds: dict[str, DataFrame]
    negative_rate: float
    lr_negative_rate: float


@dataclass
class CtrScores:
    """Test-window metrics (:func:`score_models`), all computed by Spark aggregates: the driver holds
    one row per model, per calibration bin and per point of the NE-by-trees curve."""

    calibration: dict[str, pd.DataFrame]  # model -> (pred, obs) per decile of predictions
    metrics: dict[str, dict[str, Any]]
    truth: dict[str, Any] | None
    curve: list[dict[str, Any]]
    example: np.ndarray  # a few test rows as the booster's input (the MLflow signature)


def _features_frame(rows: pd.Series) -> pd.DataFrame:
    return pd.json_normalize(rows.map(lambda r: r.asDict() if hasattr(r, "asDict") else r))


def load_features(spark: SparkSession, cfg: Config, feature_version: str) -> CtrData:
    """``gold.ctr_features`` of one version, cached; every window needs clicks and non-clicks."""
    from pyspark.sql import functions as F

    df = read_table(spark, cfg.lakehouse, ctr.CTR_FEATURES).where(F.col("feature_version") == feature_version)
    df = df.withColumn("label", F.col("click").cast("double")).cache()
    split_counts = {r["split"]: (int(r["n"]), int(r["clicks"])) for r in df.groupBy("split").agg(
        F.count("*").alias("n"), F.sum("click").alias("clicks")).collect()}
    for s in ("train", "validation", "test"):
        n, k = split_counts.get(s, (0, 0))
        if n == 0 or k == 0 or k == n:
            raise InvalidInput(
                f"feature version {feature_version!r}: the {s} window has {n} rows and {k} clicks; "
                "need both clicks and non-clicks in train, validation and test (run build_ctr_features)"
            )
    sources = sorted(r["source"] for r in df.select("source").distinct().collect())
    train, test = (df.where(F.col("split") == s) for s in ("train", "test"))
    return CtrData(df, train, test, split_counts, sources)


def fit_models(spark: SparkSession, cfg: Config, data: CtrData, timings: dict[str, float]) -> CtrModels:
    """Feature spec -> trees on a negative-down-sampled sample -> trees+LR, LR-only, trees-only
    (and the no-visual ablation); returns the models and their predictions on the test window."""
    from pyspark.sql import functions as F

    c = cfg.ctr
    train, test = data.train, data.test
    t0 = time.time()
    spec = learn_spec(train, c.max_categories, c.min_category_count, c.max_tag_features)
    timings["feature_spec_s"] = time.time() - t0
    log.info("feature spec: %d categorical, %d numeric", len(spec.categorical), len(spec.numeric))

    # ---- tree sample: negatives down-sampled at w, train + validation ----
    w = c.negative_rate
    t0 = time.time()
    sample = cap_by_hash(negative_downsample(data.df.where(F.col("split") != "test"), w, c.seed),
                         c.tree_sample, "impression_id", c.seed)
    sample_pdf: pd.DataFrame = sample.select(select_columns(sample, spec).alias("f"), "click", "split").toPandas()
    x_all = to_matrix(_features_frame(sample_pdf["f"]), spec)
    y_all = sample_pdf["click"].to_numpy()
    is_tr = (sample_pdf["split"] == "train").to_numpy()
    timings["tree_sample_s"] = time.time() - t0
    log.info("tree sample: %d rows (%d clicks) at negative rate %.3f", len(y_all), int(y_all.sum()), w)

    def trees_for(sp: FeatureSpec) -> tuple[lgb.Booster, dict[str, Any]]:
        cols = [spec.feature_names.index(n) for n in sp.feature_names]
        x = x_all[:, cols]
        return fit_trees(x[is_tr], y_all[is_tr], x[~is_tr], y_all[~is_tr], len(sp.categorical), cfg, sp.feature_names)

    booster, tree_info = trees_for(spec)
    tree_info["sample_rows"], tree_info["sample_cap"] = len(y_all), c.tree_sample
    timings["trees_s"] = tree_info["train_seconds"]
    log.info("trees: best iteration %d of %d", tree_info["best_iteration"], c.num_trees)

    lr_train = train if c.lr_negative_rate >= 1.0 else negative_downsample(train, c.lr_negative_rate, c.seed + 1)
    lr_w = min(c.lr_negative_rate, 1.0)

    def encoded(frame: DataFrame, sp: FeatureSpec, b: lgb.Booster | None, with_raw: bool) -> DataFrame:
        enc = vector_udf(spark, sp, b, with_raw)
        return frame.select("impression_id", "ts", "click", "label", enc(select_columns(frame, sp)).alias("v"))

    preds: dict[str, DataFrame] = {}
    lr_models: dict[str, LogisticRegressionModel] = {}
    t0 = time.time()
    lr_models["trees_lr"] = _fit_lr(encoded(lr_train, spec, booster, c.lr_with_raw), cfg)
    timings["trees_lr_fit_s"] = time.time() - t0
    preds["trees_lr"] = _lr_predict(lr_models["trees_lr"], encoded(test, spec, booster, c.lr_with_raw), lr_w)
    t0 = time.time()
    lr_models["lr_only"] = _fit_lr(encoded(lr_train, spec, None, True), cfg)
    timings["lr_only_fit_s"] = time.time() - t0
    preds["lr_only"] = _lr_predict(lr_models["lr_only"], encoded(test, spec, None, True), lr_w)
    prob = tree_prob_udf(spark, spec, booster, w)
    preds["trees_only"] = test.select("impression_id", "ts", "click", prob(select_columns(test, spec)).alias("p"))
    booster_nv = None
    spec_nv = spec.without_visual()
    if c.ablate_visual and spec.has_visual and spec_nv.n_features:
        t0 = time.time()
        booster_nv, tree_info["no_visual"] = trees_for(spec_nv)
        tree_info["no_visual"].pop("validation_logloss", None)
        lr_models["trees_lr_no_visual"] = _fit_lr(encoded(lr_train, spec_nv, booster_nv, c.lr_with_raw), cfg)
        preds["trees_lr_no_visual"] = _lr_predict(
            lr_models["trees_lr_no_visual"], encoded(test, spec_nv, booster_nv, c.lr_with_raw), lr_w
        )
        timings["no_visual_s"] = time.time() - t0
    return CtrModels(spec, booster, booster_nv, tree_info, lr_models, preds, w, lr_w)


def score_models(spark: SparkSession, cfg: Config, data: CtrData, fitted: CtrModels, timings: dict[str, float]) -> CtrScores:
    """NE, calibration, AUC of every model on the test window (relative to trees only), the synthetic
    ground truth's when the impressions carry one, and NE by number of trees -- Spark aggregates over
    the predictions (:func:`catalog2vec.ctr.metrics.evaluate_frame`), nothing per row on the driver."""
    from pyspark.sql import functions as F

    t0 = time.time()
    preds: DataFrame | None = None
    for name, p in fitted.preds.items():
        part = p.select(F.lit(name).alias("model"), "click", F.col("p").cast("double").alias("p"))
        preds = part if preds is None else preds.unionByName(part)
    assert preds is not None  # fit_models always predicts with every model
    preds = preds.cache()
    found = evaluate_frame(preds, "model")
    metrics: dict[str, dict[str, Any]] = {name: found[name] for name in fitted.preds}
    bins = calibration_bins(preds, "model")
    calibration = {name: bins[name] for name in fitted.preds if name in bins}
    preds.unpersist()
    base_ne = metrics["trees_only"]["ne"]
    for m in metrics.values():
        m["ne_relative_to_trees"] = m["ne"] / base_ne
    truth: dict[str, Any] | None = None
    if table_exists(cfg.lakehouse, bronze.IMPRESSIONS) and "synthetic" in data.sources:
        tp = (
            read_table(spark, cfg.lakehouse, bronze.IMPRESSIONS)
            .where(F.col("true_ctr").isNotNull())
            .select("impression_id", F.col("true_ctr").cast("double").alias("p"))
            .join(data.test.select("impression_id", "click"), "impression_id")
            .withColumn("g", F.lit("truth"))
        )
        t = evaluate_frame(tp, "g").get("truth")
        if t is not None and t["rows"] == data.split_counts["test"][0]:
            truth = t
            truth["ne_relative_to_trees"] = truth["ne"] / base_ne
    timings["evaluate_s"] = time.time() - t0

    # ---- NE by number of trees (trees only, re-calibrated): every prefix of trees scored in the executors ----
    test, spec, booster = data.test, fitted.spec, fitted.booster
    n_trees = booster.num_trees()
    grid = sorted({*np.unique(np.linspace(1, n_trees, min(n_trees, 25)).astype(int)).tolist(), n_trees})
    probs = tree_curve_udf(spark, spec, booster, fitted.negative_rate, grid)
    curve_rows = test.select("click", F.posexplode(probs(select_columns(test, spec))).alias("i", "p"))
    by_i = evaluate_frame(curve_rows, "i")
    curve = [{"trees": int(k), "ne": by_i[i]["ne"], "auc": by_i[i]["auc"]} for i, k in enumerate(grid)]
    example_pdf: pd.DataFrame = test.select(select_columns(test, spec).alias("f")).limit(20).toPandas()
    example = to_matrix(_features_frame(example_pdf["f"]), spec)
    return CtrScores(calibration, metrics, truth, curve, example)


def write_tables(spark: SparkSession, cfg: Config, version: str, fitted: CtrModels, scores: CtrScores) -> None:
    """``gold.ctr_predictions`` and ``gold.ctr_metrics``, replaced for this CTR version."""
    from pyspark.sql import functions as F

    pred_rows: DataFrame | None = None
    for name, p in fitted.preds.items():
        part = p.select(
            F.lit(version).alias("ctr_version"), F.lit(name).alias("model"), "impression_id", "ts",
            "click", F.col("p").cast("double").alias("p"), F.lit(cfg.run_id).alias("run_id"),
        )
        pred_rows = part if pred_rows is None else pred_rows.unionByName(part)
    assert pred_rows is not None  # fit_models always predicts with every model
    write_table(spark, pred_rows, ctr.CTR_PREDICTIONS, cfg.lakehouse, mode="replace_where", version=version)
    mrows = [
        {"ctr_version": version, "model": name, "split": "test", **{k: m[k] for k in (
            "rows", "clicks", "ctr", "log_loss", "ne", "calibration", "auc", "ne_relative_to_trees")},
         "run_id": cfg.run_id}
        for name, m in scores.metrics.items()
    ]
    write_table(
        spark, spark.createDataFrame(pd.DataFrame(mrows), schema=ctr.CTR_METRICS.spark_schema()),
        ctr.CTR_METRICS, cfg.lakehouse, mode="replace_where", version=version,
    )


def build_report(cfg: Config, feature_version: str, version: str, data: CtrData, fitted: CtrModels,
                 scores: CtrScores, timings: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run report (report.json) and the model card."""
    metrics, spec, c = scores.metrics, fitted.spec, cfg.ctr
    visual = None
    if "trees_lr_no_visual" in metrics:
        a, b = metrics["trees_lr_no_visual"]["ne"], metrics["trees_lr"]["ne"]
        visual = {"ne_without": a, "ne_with": b, "improved": bool(b < a), "relative_change": (b - a) / a}
    synthetic = "synthetic" in data.sources
    report: dict[str, Any] = {
        "ctr_version": version,
        "feature_version": feature_version,
        "sources": data.sources,
        "synthetic": synthetic,
        "run_id": cfg.run_id,
        "splits": {s: {"rows": n, "clicks": k} for s, (n, k) in data.split_counts.items()},
        "negative_rate": fitted.negative_rate,
        "lr_negative_rate": fitted.lr_negative_rate,
        "lr_with_raw": c.lr_with_raw,
        "trees": {k: v for k, v in fitted.tree_info.items() if k != "validation_logloss"},
        "leaf_vector_size": int(sum(t["num_leaves"] for t in fitted.booster.dump_model()["tree_info"])),
        "raw_vector_size": spec.raw_size,
        "features": spec.feature_names,
        "visual_features": [n for n in spec.feature_names if n.startswith(("tag:", "emb_"))],
        "metrics_test": metrics,
        "ground_truth_test": scores.truth,
        "visual_features_effect": visual,
        "ne_by_trees": scores.curve,
        "timings_s": timings,
        "driver_peak_rss_mib": peak_rss_mib(),
        "config": cfg.to_dict()["ctr"],
    }
    card = {
        "model_version": version,
        "kind": "ctr_trees_lr",
        "feature_version": feature_version,
        "run_id": cfg.run_id,
        "feature_spec": spec.to_dict(),
        "metrics_test": metrics,
        "artifacts": ["booster.txt", *[f"{n}_lr" for n in fitted.lr_models], "feature_spec.json"]
        + (["booster_no_visual.txt"] if fitted.booster_nv is not None else []),
        "config": cfg.to_dict()["ctr"],
        "synthetic": synthetic,
    }
    return report, card


def write_models(model_dir: str, fitted: CtrModels) -> None:
    """The boosters and the LR models under ``models/ctr/<version>/``."""
    storage.write_bytes(storage.join(model_dir, "booster.txt"), fitted.booster.model_to_string().encode())
    if fitted.booster_nv is not None:
        storage.write_bytes(storage.join(model_dir, "booster_no_visual.txt"),
                            fitted.booster_nv.model_to_string().encode())
    for name, model in fitted.lr_models.items():
        model.write().overwrite().save(storage.to_spark_uri(storage.join(model_dir, f"{name}_lr")))


def write_report(root: str, version: str, report_dir: str, fitted: CtrModels, scores: CtrScores,
                 report: dict[str, Any], card: dict[str, Any]) -> None:
    """Feature spec and card (last: the card marks the model complete) published by the model owner
    (:func:`catalog2vec.models.publish_ctr`); report.json/.md/.html and the pictures under
    ``reports/ctr/<version>/``."""
    models.publish_ctr(root, version, card, {"feature_spec.json": json.dumps(fitted.spec.to_dict(), indent=2).encode()})
    storage.write_bytes(storage.join(report_dir, "report.json"), json.dumps(report, indent=2, default=str).encode())
    pictures = {"calibration.png": calibration_plot(scores.calibration),
                "ne_by_trees.png": ne_curve_plot(scores.curve, scores.metrics["trees_lr"]["ne"])}
    for name, png in pictures.items():
        storage.write_bytes(storage.join(report_dir, name), png)
    storage.write_bytes(storage.join(report_dir, "report.md"), report_markdown(report).encode())
    storage.write_bytes(storage.join(report_dir, "report.html"), report_html(report, pictures).encode())


def train_ctr(spark: SparkSession, cfg: Config, feature_version: str, version: str | None = None) -> dict[str, Any]:
    """Run the whole training; returns the report dict (also written as report.json).

    load_features -> fit_models -> score_models -> write_models -> write_tables -> build_report -> write_report.
    """
    t_start = time.time()
    version = version or feature_version
    timings: dict[str, float] = {}
    data = load_features(spark, cfg, feature_version)
    fitted = fit_models(spark, cfg, data, timings)
    scores = score_models(spark, cfg, data, fitted, timings)
    root = storage.normalize(cfg.lakehouse)
    model_dir = models.ctr_model_dir(root, version)
    report_dir = layout.ctr_report_dir(root, version)
    write_models(model_dir, fitted)  # model files before the tables that name the version
    write_tables(spark, cfg, version, fitted, scores)
    timings["total_s"] = time.time() - t_start
    report, card = build_report(cfg, feature_version, version, data, fitted, scores, timings)
    write_report(root, version, report_dir, fitted, scores, report, card)
    data.df.unpersist()
    report["model_dir"], report["report_dir"] = model_dir, report_dir
    if cfg.ctr.mlflow:
        report["mlflow"] = log_to_mlflow(cfg, report, card, fitted.booster, scores.example, fitted.spec.feature_names,
                                         model_dir, [f"{n}_lr" for n in fitted.lr_models])
    return report


def log_to_mlflow(cfg: Config, report: dict[str, Any], card: dict[str, Any], booster: lgb.Booster, example: np.ndarray,
                  feature_names: list[str], model_dir: str, lr_dirs: list[str]) -> dict[str, Any]:
    """One MLflow run per CTR version: the [ctr] config as params, every model's test metrics
    (``trees_lr.ne``, …), the trees-only NE per number of trees (step = trees), the card and report
    JSON, the booster (``mlflow.lightgbm``, signature, registered under ``[mlflow] ctr_model_name``
    with the alias) and each Spark MLlib logistic regression as its saved directory
    (``pyspark.ml.classification.LogisticRegressionModel.load``)."""
    version = str(report["ctr_version"])
    run = tracking.start_run(cfg, "ctr", version, {**cfg.to_dict()["ctr"], "feature_version": report["feature_version"],
                                                   "sources": report["sources"]})
    try:
        for name, m in report["metrics_test"].items():
            run.log_metrics(m, prefix=f"{name}.")
        if report.get("ground_truth_test"):
            run.log_metrics(report["ground_truth_test"], prefix="ground_truth.")
        for point in report["ne_by_trees"]:
            run.log_metrics({"trees_only.ne_by_trees": point["ne"]}, step=int(point["trees"]))
        run.log_dict(card, "model_card.json")
        run.log_dict(report, "report.json")
        with tempfile.TemporaryDirectory(prefix="c2v-ctr-") as tmp:
            for lr in lr_dirs:
                base = storage.join(model_dir, lr)
                for f in storage.list_files(base):
                    storage.get_file(f, os.path.join(tmp, lr, f[len(base):].lstrip("/")))
                run.log_artifacts(os.path.join(tmp, lr), lr)
        registered = run.log_lightgbm_model(booster, example, feature_names, version)
    except BaseException:
        run.end("FAILED")
        raise
    run.end()
    return {"run_id": run.run_id, "registered_model": run.registry.model_name, "registered_version": registered,
            "alias": run.registry.alias}
