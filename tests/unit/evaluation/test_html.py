"""Both HTML reports come from the one jinja2 layer and are self-contained: every picture inlined,
no relative links; the evaluation report labels the word-frequency prior as itself; best values marked."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest


def _png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def _eval_report(flag: str | None) -> dict[str, Any]:
    feats = ("model", "random_weights", "color_histogram")
    ret = {f: {rel: {"precision@10": 0.1 + i / 10, "recall@10": 0.2, "queries": 36}
               for rel in ("category", "category_color")} for i, f in enumerate(feats)}
    return {
        "model_version": "mv<1>", "vocab_version": "v1", "run_id": "r1", "counts": {"test": 36},
        "verdict": {"flag": flag, "wins_vs_random_weights": "1/7", "wins_vs_color_histogram": "4/7"},
        "headline": {f: {"retrieval:category:precision@10": 0.1 + i / 10} for i, f in enumerate(feats)},
        "retrieval": ret,
        "label_prediction": {
            "model": {"head": {"recall@3": 0.3, "recall@5": 0.4}, "knn_transfer": {"recall@3": 0.35, "recall@5": 0.45}},
            "random_weights": {"head": {"recall@3": 0.1, "recall@5": 0.2}, "knn_transfer": {"recall@3": 0.2, "recall@5": 0.5}},
            "color_histogram": {"knn_transfer": {"recall@3": 0.15, "recall@5": 0.3}},
            "word_frequency_prior": {"prior": {"recall@3": 0.25, "recall@5": 0.33}},
        },
        "linear_probe": {f: {a: {"accuracy": 0.5, "macro_f1": 0.4} for a in ("category", "color", "gender")} for f in feats},
        "clustering": {**{f: {"test_kmeans": {"nmi": 0.7, "purity": 0.6}} for f in feats},
                       "model": {"test_kmeans": {"nmi": 0.7, "purity": 0.6},
                                 "spark_job": {"k": 12, "items": 384, "nmi_all": 0.61, "purity_all": 0.5,
                                               "nmi_test": 0.6, "purity_test": 0.4}}},
        "similarity": {"available": True, "attribute_words": ["white", "black"], "test_pairs": 630,
                       "test_positive_pairs": 20, "pair_auc": {"pan": 0.83, "cosine": 0.88},
                       "retrieval": {n: {rel: {"precision@5": 0.1} for rel in ("category_color", "category")}
                                     for n in ("pan", "cosine")},
                       "example_pairs": [{"pair": ["1", "2"], "similar": True, "p": 0.9, "cosine": 0.99953,
                                          "conditions": [{"word": "white", "condition": 0, "w": 0.5, "s": 0.7}]}]},
        "seconds": 12.5,
    }


@pytest.mark.parametrize("flag", [None, "WARNING: THE MODEL DOES NOT BEAT BOTH BASELINES"])
def test_evaluation_report_self_contained_and_labels_the_prior(flag: str | None) -> None:
    from catalog2vec.evaluation.html import render_html

    pictures = {n: _png((i * 40, 0, 0)) for i, n in enumerate(
        ("headline_metrics.png", "retrieval_model.png", "retrieval_color_histogram.png", "cluster_prototypes.png"))}
    html = render_html(_eval_report(flag), pictures)
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"src=['\"](?!data:)", html)  # no relative picture links
    assert "mv&lt;1&gt;" in html  # escaped
    assert "word_frequency_prior:knn_transfer" not in html
    assert "<th>word_frequency_prior</th>" in html and "<th>model:knn_transfer</th>" in html
    assert ('class="flag"' in html) == bool(flag) and ('class="ok"' in html) == (not flag)
    # the best of each row is marked: recall@5 is best for random_weights:knn_transfer (0.5)
    row = re.search(r"<tr><td>recall@5</td>(.*?)</tr>", html, re.S)
    assert row and re.findall(r'class="num best">([^<]+)<', row.group(1)) == ["0.500"]
    assert "0.9995" in html  # PAN example cosine with 4 decimals
    assert "k=12, 384 items" in html


def test_ctr_report_is_self_contained_with_all_models() -> None:
    from catalog2vec.ctr.report import report_html

    def m(ne: float) -> dict[str, Any]:
        return {"ne": ne, "ne_relative_to_trees": ne / 0.96, "calibration": 1.01, "auc": 0.7, "log_loss": 0.2,
                "rows": 6000, "ctr": 0.05, "clicks": 300}

    report = {
        "ctr_version": "synthetic-mv", "feature_version": "synthetic-mv", "sources": ["synthetic"], "synthetic": True,
        "run_id": "r", "splits": {s: {"rows": 10, "clicks": 2} for s in ("train", "validation", "test")},
        "negative_rate": 0.2, "trees": {"best_iteration": 40}, "leaf_vector_size": 640, "raw_vector_size": 90,
        "features": ["a", "tag:white"], "visual_features": ["tag:white"],
        "metrics_test": {"trees_lr": m(0.9575), "lr_only": m(0.9742), "trees_only": m(0.96), "trees_lr_no_visual": m(0.9555)},
        "ground_truth_test": m(0.90),
        "visual_features_effect": {"ne_without": 0.9555, "ne_with": 0.9575, "improved": False, "relative_change": 0.002},
        "timings_s": {"total_s": 30.0}, "driver_peak_rss_mib": 900.0,
    }
    html = report_html(report, {"calibration.png": _png((0, 90, 0)), "ne_by_trees.png": _png((0, 0, 90))})
    assert html.count("data:image/png;base64,") == 2
    assert "src='calibration.png'" not in html and not re.search(r"src=['\"](?!data:)", html)
    for name in ("trees_lr", "lr_only", "trees_only", "trees_lr_no_visual", "ground_truth (synthetic oracle)"):
        assert f"<td>{name}</td>" in html
    assert "0.9575" in html and "did NOT improve NE: 0.9555 without -&gt; 0.9575 with" in html
    assert 'id="synthetic"' in html
    best = re.findall(r"<tr><td>([^<]+)</td><td class=\"num best\">", html)
    assert best == ["trees_lr_no_visual"]  # lowest NE among the models (the oracle is not a model)


def test_evaluation_report_shows_per_colour_f1_and_confusion() -> None:
    from catalog2vec.evaluation.html import render_html
    from catalog2vec.evaluation.report import HEADLINE, neighbour_mark

    report = _eval_report(None)
    for i, f in enumerate(("model", "random_weights", "color_histogram")):
        report["linear_probe"][f]["color"]["per_class"] = [
            {"class": "Black", "support": 12, "f1": 0.8 - i / 10, "most_confused_with": "Navy Blue", "confused_share": 0.25},
            {"class": "Blue", "support": 7, "f1": 0.1 + i / 10, "most_confused_with": "Black", "confused_share": 0.5 + i / 10},
        ]
    html = render_html(report, {})
    black = re.search(r"<tr><td>Black \(n=12\) F1</td>(.*?)</tr>", html, re.S)
    assert black and re.findall(r'class="num best">([^<]+)<', black.group(1)) == ["0.800"]  # the model's
    blue = re.search(r"<tr><td>Blue \(n=7\) F1</td>(.*?)</tr>", html, re.S)
    assert blue and re.findall(r'class="num best">([^<]+)<', blue.group(1)) == ["0.300"]  # the histogram's
    assert "<td>Blue (n=7)</td><td>Black (0.50)</td><td>Black (0.60)</td><td>Black (0.70)</td>" in html
    assert ("retrieval", "category_color", "precision@10") in HEADLINE
    assert ("linear_probe", "color", "macro_f1") in HEADLINE
    assert neighbour_mark(("Jackets", "Blue"), ("Jackets", "Black")) == "cat+ col-"
    assert neighbour_mark(("Jackets", "Blue"), ("Shirts", "Blue")) == "cat- col+"
    # without per-colour rows (an older report.json) the section is simply absent
    assert "most confused with" not in render_html(_eval_report(None), {})
