"""The evaluation report of one model version against two baselines, on held-out items.

Three feature sets are evaluated side by side on the **test split** (items never trained on):

* ``model``: the trained embeddings (``gold.item_embeddings``);
* ``random_weights``: the same architecture at random init, embedding the same images;
* ``color_histogram``: a joint RGB histogram of the same images.

Sections: retrieval (precision/recall/hit@k, relevant = same category, and same category +
colour, gallery = the other test items), label prediction (top-k recall of each item's own
vocabulary words: the model head, kNN word transfer from train items for every feature set, and
a word-frequency prior), linear probe (category / colour / gender, trained on train-split
features), clustering (k-means NMI / purity against category; plus the Spark job's clusters),
attribute-aware similarity (PAN vs cosine) and a verdict that is flagged loudly when the model
does not beat both baselines. Written as ``report.json`` + ``report.html`` (pictures embedded).

Bounded at any catalog size: only ``[evaluation] max_test_items`` test-split items and
``max_train_items`` train-split items are read (a deterministic sample by a hash of item_id,
chosen in Spark: :func:`catalog2vec.retrieval.inputs.split_frame` with caps); the Spark job's
clusters are scored on those sampled items.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import layout, storage
from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.evaluation import metrics as M
from catalog2vec.evaluation.features import color_histograms, linear_probe, random_weights_model
from catalog2vec.lakehouse import read_table, table_exists
from catalog2vec.plots import png_bytes, pyplot
from catalog2vec.schemas import analysis, gold
from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from catalog2vec.retrieval.inputs import Embeddings

log = logging.getLogger(__name__)

FEATURES = ("model", "random_weights", "color_histogram")
RETRIEVAL_KS = (1, 5, 10, 20)
TAG_KS = (3, 5, 10)
TOP_COLORS = 8  # colours with a per-colour F1 and confusion row in the probe section
# headline metrics used by the verdict (higher is better)
HEADLINE = (
    ("retrieval", "category", "precision@10"),
    ("retrieval", "category_color", "precision@10"),
    ("linear_probe", "category", "accuracy"),
    ("linear_probe", "color", "accuracy"),
    ("linear_probe", "color", "macro_f1"),
    ("linear_probe", "gender", "accuracy"),
    ("clustering", "test_kmeans", "nmi"),
    ("label_prediction", "knn_transfer", "recall@5"),
)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _knn_word_transfer(
    train_x: np.ndarray, train_words: list[list[int]], test_x: np.ndarray, num_words: int, k: int = 10
) -> np.ndarray:
    """Word scores of test items: cosine-weighted votes of the k nearest train items' words."""
    sims = l2_normalize(test_x) @ l2_normalize(train_x).T
    kk = min(k, sims.shape[1])
    nn_idx = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    scores = np.zeros((test_x.shape[0], num_words), dtype=np.float64)
    for i in range(test_x.shape[0]):
        for j in nn_idx[i]:
            w = max(float(sims[i, j]), 0.0) + 1e-6
            for word in train_words[j]:
                scores[i, word] += w
    return scores


def _tag_recall(ranked: list[list[int]], truth: list[list[int]]) -> dict[str, float]:
    return {f"recall@{k}": M.tag_recall_at_k(ranked, truth, k) for k in TAG_KS}


def _model_head_tags(
    spark: SparkSession, root: str, model_version: str, test_ids: list[str], tokens: list[str]
) -> tuple[list[list[int]], int] | None:
    """Ranked tag indices per test item from gold.item_tags (None when the table/version is absent)."""
    from pyspark.sql import functions as F

    if not table_exists(root, gold.ITEM_TAGS):
        return None
    pdf: pd.DataFrame = (
        read_table(spark, root, gold.ITEM_TAGS)
        .where((F.col("model_version") == model_version) & F.col("item_id").isin(test_ids))
        .select("item_id", "tag", "rank")
        .toPandas()
    )
    if pdf.empty:
        return None
    index = {t: i for i, t in enumerate(tokens)}
    ranked: dict[str, list[int]] = {}
    for iid, grp in pdf.sort_values(["item_id", "rank"]).groupby("item_id"):
        ranked[str(iid)] = [index[t] for t in grp["tag"] if t in index]
    return [ranked.get(i, []) for i in test_ids], int(pdf.groupby("item_id")["rank"].max().max())


def _bar_chart(report: dict[str, Any]) -> bytes:
    plt = pyplot()

    labels = [f"{s}:{g}:{m}" for s, g, m in HEADLINE]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.27
    for f_i, feat in enumerate(FEATURES):
        vals = [report["headline"][feat].get(lbl) or 0.0 for lbl in labels]
        ax.bar(np.arange(len(labels)) + (f_i - 1) * width, vals, width, label=feat)
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels([lbl.replace(":", "\n", 1) for lbl in labels], fontsize=7)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("headline metrics on the test split (higher is better)")
    return png_bytes(fig, dpi=80)


@dataclass
class _Split:
    """The evaluation inputs: the items with embeddings, their test/train split (train subsampled
    to ``max_train`` for the probe) and the images of both."""

    frame: pd.DataFrame  # item_id, row, split, labels, category, color, gender, title
    emb: Embeddings  # the embedding matrix + invalid rows (retrieval.inputs)
    tokens: list[str]
    vocab_version: str
    card: dict[str, Any]
    test: pd.DataFrame
    train: pd.DataFrame
    images: dict[str, bytes]
    test_without_image: int
    train_without_image: int

    @cached_property
    def categories(self) -> list[str]:
        """The test items' categories (the retrieval, probe and clustering relevance)."""
        return list(self.test["category"].astype(str))

    @cached_property
    def category_colors(self) -> list[str]:
        """``category|colour`` of the test items (the stricter retrieval relevance)."""
        colors = self.test["color"].astype(str)
        return [f"{a}|{b}" for a, b in zip(self.categories, colors, strict=True)]

    @cached_property
    def truth(self) -> list[list[int]]:
        """Each test item's own vocabulary indices (the tag-recall ground truth)."""
        return [list(v) for v in self.test["labels"]]

    @cached_property
    def titles(self) -> dict[str, str]:
        return dict(zip(self.frame["item_id"], self.frame["title"].astype(str), strict=True))


def _load_split(spark: SparkSession, cfg: Config, model_version: str, max_train: int) -> _Split:
    from catalog2vec.retrieval.inputs import model_card, read_images, split_frame

    caps = {"test": cfg.evaluation.max_test_items, "train": max_train}
    frame, emb, tokens, vocab_version = split_frame(spark, cfg, model_version, caps, cfg.evaluation.seed)
    test_all = frame[frame["split"] == "test"]
    train_all = frame[frame["split"] == "train"]
    if len(test_all) < 3:
        raise InvalidInput(f"only {len(test_all)} test-split items with embeddings; cannot evaluate")
    rng = np.random.default_rng(0)
    if len(train_all) > max_train:
        train_all = train_all.iloc[np.sort(rng.choice(len(train_all), max_train, replace=False))]
    images = read_images(spark, cfg.lakehouse, list(test_all["item_id"]) + list(train_all["item_id"]))
    test = test_all[test_all["item_id"].isin(images)].reset_index(drop=True)
    train = train_all[train_all["item_id"].isin(images)].reset_index(drop=True)
    return _Split(frame, emb, tokens, vocab_version, model_card(cfg.lakehouse, model_version), test, train,
                  images, int(len(test_all) - len(test)), int(len(train_all) - len(train)))


def _report_header(data: _Split, cfg: Config, model_version: str) -> dict[str, Any]:
    keys = ("arch", "loss", "embedding_dim", "num_words", "image_size", "metrics")
    return {
        "model_version": model_version,
        "vocab_version": data.vocab_version,
        "run_id": cfg.run_id,
        "model_card": {k: data.card.get(k) for k in keys},
        "protocol": {
            "queries_and_gallery": "test split (items never trained on); each query ranked against the other test items",
            "relevance": {"category": "same category", "category_color": "same category and colour"},
            "probe": "LogisticRegression on standardised frozen features, trained on the train split",
            "features": list(FEATURES),
            "sample": {"max_test_items": cfg.evaluation.max_test_items, "max_train_items": cfg.evaluation.max_train_items,
                       "chosen_by": f"hash of item_id (evaluation.seed = {cfg.evaluation.seed})"},
        },
        "counts": {
            "items_with_embedding_and_labels": len(data.frame),
            "test_items": len(data.test),
            "train_items_for_probe": len(data.train),
            "test_items_without_image": data.test_without_image,
            "train_items_without_image": data.train_without_image,
            "invalid_embeddings": len(data.emb.invalid),
        },
    }


Features = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (test features, train features)


def _features(data: _Split, report: dict[str, Any]) -> tuple[Features, np.ndarray | None]:
    """The three systems' features of the same test/train images, and the random-weights network's
    tag probabilities of the test items (None without a model card)."""
    import torch

    from catalog2vec.retrieval.query import embed_images

    test_bytes = [data.images[i] for i in data.test["item_id"]]
    train_bytes = [data.images[i] for i in data.train["item_id"]]
    feats: Features = {
        "model": (data.emb.matrix[data.test["row"].to_numpy()], data.emb.matrix[data.train["row"].to_numpy()])
    }
    rand_head: np.ndarray | None = None
    if data.card:
        net = random_weights_model(data.card, seed=0)
        size = int(data.card.get("image_size", 224))
        feats["random_weights"] = (embed_images(net, size, test_bytes), embed_images(net, size, train_bytes))
        with torch.inference_mode():
            rand_head = net.tag_probabilities(torch.from_numpy(feats["random_weights"][0])).numpy()
    else:
        report["counts"]["random_weights_skipped"] = "no model card: architecture unknown"
    feats["color_histogram"] = (color_histograms(test_bytes), color_histograms(train_bytes))
    return feats, rand_head


def _feature_sections(data: _Split, feats: Features, cfg: Config) -> dict[str, dict[str, Any]]:
    """Retrieval, linear probe, kNN word transfer and k-means of every feature set."""
    from sklearn.cluster import KMeans

    test, train = data.test, data.train
    cat_test, catcol_test = data.categories, data.category_colors
    truth = data.truth
    train_words = [list(v) for v in train["labels"]]
    k_clusters = max(2, min(cfg.cluster.k, len(test) // 2))
    sections: dict[str, dict[str, Any]] = {"retrieval": {}, "label_prediction": {}, "linear_probe": {},
                                           "clustering": {}}
    for name, (xt, xtr) in feats.items():
        ranked = M.rank_by_cosine(xt, xt, exclude_self=True)
        sections["retrieval"][name] = {
            "category": M.retrieval_report_from_ranking(ranked, cat_test, RETRIEVAL_KS),
            "category_color": M.retrieval_report_from_ranking(ranked, catcol_test, RETRIEVAL_KS),
        }
        sections["linear_probe"][name] = {
            attr: linear_probe(xtr, list(train[attr].astype(str)), xt, list(test[attr].astype(str)),
                               per_class=TOP_COLORS if attr == "color" else 0)
            for attr in ("category", "color", "gender")
        }
        knn = M.top_k_from_scores(_knn_word_transfer(xtr, train_words, xt, len(data.tokens)), max(TAG_KS))
        sections["label_prediction"][name] = {"knn_transfer": _tag_recall(knn.tolist(), truth)}
        km = KMeans(n_clusters=k_clusters, n_init=4, random_state=cfg.cluster.seed).fit(l2_normalize(xt))
        sections["clustering"][name] = {
            "test_kmeans": {"k": k_clusters, "nmi": M.nmi(cat_test, km.labels_), "purity": M.purity(cat_test, km.labels_)}
        }
    return sections


def _head_sections(spark: SparkSession, cfg: Config, model_version: str, data: _Split, rand_head: np.ndarray | None,
                   label_prediction: dict[str, Any]) -> None:
    """Tag recall of the model's own head, the random network's head and the word-frequency prior."""
    truth = data.truth
    head = _model_head_tags(spark, cfg.lakehouse, model_version, list(data.test["item_id"]), data.tokens)
    if head is not None:
        ranked_tags, top_n = head
        label_prediction["model"]["head"] = {**_tag_recall(ranked_tags, truth), "top_n_stored": top_n}
    if rand_head is not None:
        label_prediction["random_weights"]["head"] = _tag_recall(
            M.top_k_from_scores(rand_head, max(TAG_KS)).tolist(), truth
        )
    prior = np.zeros(len(data.tokens))
    for words in data.train["labels"]:
        prior[list(words)] += 1
    prior_rank = [list(np.argsort(-prior, kind="stable")[: max(TAG_KS)])] * len(truth)
    # a method of its own (no features): "prior", not knn_transfer
    label_prediction["word_frequency_prior"] = {"prior": _tag_recall(prior_rank, truth)}


def _headline(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    headline: dict[str, dict[str, float | None]] = {}
    for name in FEATURES:
        row: dict[str, float | None] = {}
        for sec, group, metric in HEADLINE:
            try:
                val = report[sec][name][group][metric]
                row[f"{sec}:{group}:{metric}"] = None if val is None or not math.isfinite(val) else float(val)
            except KeyError:
                row[f"{sec}:{group}:{metric}"] = None
        headline[name] = row
    return headline


def neighbour_mark(query: tuple[str, str], neighbour: tuple[str, str]) -> str:
    """What a shopper checks first about a neighbour of a query: same category, same colour?
    ``("Jackets", "Blue"), ("Jackets", "Black")`` → ``"cat+ col-"``."""
    same = ["+" if a == b else "-" for a, b in zip(query, neighbour, strict=True)]
    return f"cat{same[0]} col{same[1]}"


def _retrieval_pictures(data: _Split, feats: Features, examples: int) -> dict[str, bytes]:
    """Query + top-5 grids of the model and the colour histogram, each neighbour marked with its
    category and colour agreement with the query (:func:`neighbour_mark`) and its cosine."""
    from catalog2vec.retrieval.query import grid_png_bytes

    test, images = data.test, data.images
    titles = data.titles
    attrs = list(zip(data.categories, test["color"].astype(str), strict=True))
    qi = list(range(0, len(test), max(1, len(test) // examples)))[:examples]
    pictures: dict[str, bytes] = {}
    for name in ("model", "color_histogram"):
        ranked = M.rank_by_cosine(feats[name][0], feats[name][0], exclude_self=True)
        unit = l2_normalize(feats[name][0])
        rows = []
        for q in qi:
            qid = test["item_id"][q]
            cells: list[tuple[bytes | None, str]] = [(images[qid], f"QUERY {attrs[q][0]} {attrs[q][1]}: {titles.get(qid, qid)}")]
            for j in ranked[q][:5]:
                nid = test["item_id"][j]
                cos = float(unit[q] @ unit[j])  # 4 decimals: near-collinear embeddings differ there
                cells.append((images[nid], f"{neighbour_mark(attrs[q], attrs[j])} {cos:.4f} {titles.get(nid, nid)}"))
            rows.append(cells)
        pictures[f"retrieval_{name}.png"] = grid_png_bytes(
            rows, title=f"test-split retrieval: {name} (cat+/- col+/-: same category / colour as the query)")
    return pictures


def evaluate(
    spark: SparkSession,
    cfg: Config,
    model_version: str,
    out_dir: str | os.PathLike[str] | None = None,
    max_train: int | None = None,
    examples: int = 4,
) -> dict[str, Any]:
    """Compute every section, write report.json + report.html (+ PNGs); returns the report dict.
    ``max_train``: train-split items read (default ``evaluation.max_train_items``)."""
    t0 = time.time()
    max_train = cfg.evaluation.max_train_items if max_train is None else max_train
    out = storage.normalize(out_dir) if out_dir else layout.report_dir(cfg.lakehouse, model_version)
    data = _load_split(spark, cfg, model_version, max_train)
    report = _report_header(data, cfg, model_version)
    feats, rand_head = _features(data, report)
    log.info("features ready (%.1fs)", time.time() - t0)
    # collapse diagnostics of the test embeddings (mean pairwise cosine, effective rank)
    report["collapse"] = {name: M.collapse_diagnostics(xt) for name, (xt, _) in feats.items()}
    sections = _feature_sections(data, feats, cfg)
    log.info("retrieval, probe, kNN labels, k-means done (%.1fs)", time.time() - t0)
    _head_sections(spark, cfg, model_version, data, rand_head, sections["label_prediction"])
    sections["clustering"]["model"]["spark_job"] = _spark_clusters(spark, cfg, model_version, data.frame, data.test)
    report.update(sections)
    report["similarity"] = _pan_section(cfg, model_version, feats["model"][0], data.category_colors,
                                        data.categories, data.tokens)
    log.info("similarity section done (%.1fs)", time.time() - t0)
    report["headline"] = _headline(report)
    report["verdict"] = verdict(report["headline"])
    pictures = {"headline_metrics.png": _bar_chart(report), **_retrieval_pictures(data, feats, examples)}
    proto_png = _prototype_grid(spark, cfg, model_version, data.titles)
    if proto_png:
        pictures["cluster_prototypes.png"] = proto_png
    report["pictures"] = sorted(pictures)
    report["seconds"] = round(time.time() - t0, 1)
    report = _clean(report)
    write_report(report, pictures, out)
    return report


def verdict(headline: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """The model beats a baseline when it is better on a strict majority of the comparable headline
    metrics; the flag is raised unless it beats both."""
    out: dict[str, Any] = {}
    for base in ("random_weights", "color_histogram"):
        wins = losses = 0
        for metric, val in headline["model"].items():
            other = headline.get(base, {}).get(metric)
            if val is None or other is None:
                continue
            wins += int(val > other)
            losses += int(val <= other)
        compared = wins + losses
        out[f"beats_{base}"] = bool(compared and wins * 2 > compared)
        out[f"wins_vs_{base}"] = f"{wins}/{compared}"
    ok = out["beats_random_weights"] and out["beats_color_histogram"]
    out["beats_both_baselines"] = ok
    out["flag"] = (
        ""
        if ok
        else "WARNING: THE MODEL DOES NOT BEAT BOTH BASELINES "
        f"(wins vs random weights {out['wins_vs_random_weights']}, "
        f"vs colour histogram {out['wins_vs_color_histogram']}). Do not ship these embeddings."
    )
    return out


def _spark_clusters(
    spark: SparkSession, cfg: Config, model_version: str, frame: pd.DataFrame, test: pd.DataFrame
) -> dict[str, Any] | None:
    """NMI / purity against category of the clusters written by jobs/cluster.py (the evaluated
    items -- the bounded test + train sample -- and the test items)."""
    from pyspark.sql import functions as F

    if not table_exists(cfg.lakehouse, analysis.ITEM_CLUSTERS) or frame.empty:
        return None
    sampled = spark.createDataFrame([(str(i),) for i in frame["item_id"]], "item_id string")
    clusters = read_table(spark, cfg.lakehouse, analysis.ITEM_CLUSTERS).where(F.col("model_version") == model_version)
    k_row = clusters.agg(F.countDistinct("cluster").alias("k")).first()
    pdf: pd.DataFrame = (
        clusters.join(sampled, "item_id", "left_semi")
        .select("item_id", "cluster")
        .toPandas()
    )
    if pdf.empty:
        return None
    merged = frame[["item_id", "category", "split"]].merge(pdf, on="item_id")
    tst = merged[merged["split"] == "test"]
    return {
        "k": int(k_row["k"]) if k_row is not None else 0,
        "items": len(merged),
        "nmi_all": M.nmi(list(merged["category"].astype(str)), list(merged["cluster"])),
        "purity_all": M.purity(list(merged["category"].astype(str)), list(merged["cluster"])),
        "nmi_test": M.nmi(list(tst["category"].astype(str)), list(tst["cluster"])) if len(tst) else None,
        "purity_test": M.purity(list(tst["category"].astype(str)), list(tst["cluster"]))
        if len(tst)
        else None,
    }


def _prototype_grid(spark: SparkSession, cfg: Config, model_version: str, titles: dict[str, str]) -> bytes | None:
    from pyspark.sql import functions as F

    from catalog2vec.retrieval.inputs import read_images
    from catalog2vec.retrieval.query import grid_png_bytes

    if not table_exists(cfg.lakehouse, analysis.CLUSTERS):
        return None
    rows = (
        read_table(spark, cfg.lakehouse, analysis.CLUSTERS)
        .where(F.col("model_version") == model_version)
        .orderBy("cluster")
        .limit(8)
        .collect()
    )
    if not rows:
        return None
    ids = [p for r in rows for p in r["prototypes"][:5]]
    imgs = read_images(spark, cfg.lakehouse, ids)
    grid = [
        [(imgs.get(p), f"c{r['cluster']} (n={r['size']}): {titles.get(p, p)}") for p in r["prototypes"][:5]]
        for r in rows
    ]
    return grid_png_bytes(grid, title="cluster prototypes (nearest the centroid first), first 8 clusters")


def _pan_section(
    cfg: Config, model_version: str, x_test: np.ndarray, catcol: list[str], cat: list[str], tokens: list[str]
) -> dict[str, Any]:
    from catalog2vec.similarity.pan import TrainedPAN, pan_scores, pan_similarity_matrix
    d = layout.similarity_dir(cfg.lakehouse, model_version)
    try:
        trained = TrainedPAN.load(d)
    except FileNotFoundError:
        return {"available": False, "note": f"no trained PAN at {d}; run jobs/train_similarity.py"}
    n = x_test.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    y = np.asarray([catcol[i] == catcol[j] for i, j in zip(iu, ju, strict=True)], dtype=int)
    p, s, w = pan_scores(trained.model, x_test[iu], x_test[ju])
    xn = l2_normalize(x_test)
    cos = (xn[iu] * xn[ju]).sum(axis=1)
    section: dict[str, Any] = {
        "available": True,
        "attribute_words": trained.attribute_words,
        "test_pairs": len(y),
    }
    section["test_positive_pairs"] = int(y.sum())
    if 0 < y.sum() < len(y):
        section["pair_auc"] = {"pan": M.auc(y, p), "cosine": M.auc(y, cos)}
    sims = pan_similarity_matrix(trained.model, x_test, x_test)
    for name, ranked in (
        ("pan", M.rank_by_scores(sims, exclude_self=True)),
        ("cosine", M.rank_by_cosine(x_test, x_test, exclude_self=True)),
    ):
        section.setdefault("retrieval", {})[name] = {
            "category_color": {
                k: v
                for k, v in M.retrieval_report_from_ranking(ranked, catcol, RETRIEVAL_KS).items()
                if k.startswith("precision")
            },
            "category": {
                k: v
                for k, v in M.retrieval_report_from_ranking(ranked, cat, RETRIEVAL_KS).items()
                if k.startswith("precision")
            },
        }
    words = trained.attribute_words
    examples = []
    pos_idx = list(np.flatnonzero(y == 1)[:3]) + list(np.flatnonzero(y == 0)[:2])
    for e in pos_idx:
        top = np.argsort(-w[e])[:3]
        examples.append(
            {
                "pair": [catcol[iu[e]], catcol[ju[e]]],
                "similar": bool(y[e]),
                "p": float(p[e]),
                "cosine": float(cos[e]),
                "conditions": [
                    {
                        "condition": int(c),
                        "word": words[c] if c < len(words) else "",
                        "w": float(w[e, c]),
                        "s": float(s[e, c]),
                    }
                    for c in top
                ],
            }
        )
    section["example_pairs"] = examples
    return section


def write_report(report: dict[str, Any], pictures: dict[str, bytes], out: str) -> None:
    """Pictures and ``report.html`` first, ``report.json`` (the marker) last."""
    from catalog2vec.evaluation.html import render_html

    payload: dict[str, bytes | str] = {storage.join(out, name): data for name, data in pictures.items()}
    payload[storage.join(out, "report.html")] = render_html(report, pictures)
    storage.publish(storage.join(out, "report.json"), json.dumps(report, indent=2, sort_keys=False), payload)
    log.info("report written to %s", out)
