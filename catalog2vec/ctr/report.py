"""The CTR report: calibration and NE-by-trees plots, the paper's Table 1 as markdown, and the
self-contained HTML report (jinja2). Pure functions of the report dict the trainer builds."""

from __future__ import annotations

from typing import Any

import pandas as pd

from catalog2vec.plots import png_bytes, pyplot
from catalog2vec.templates import render


def calibration_plot(bins: dict[str, pd.DataFrame]) -> bytes:
    """Mean predicted vs observed CTR per equal-count bin of predictions, one line per model
    (``bins``: model -> frame with columns pred, obs, from :func:`catalog2vec.ctr.metrics.calibration_bins`)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = 1.0, 0.0
    for name, g in bins.items():
        ax.plot(g["pred"], g["obs"], marker="o", label=name)
        lo, hi = min(lo, g["pred"].min()), max(hi, g["pred"].max(), g["obs"].max())
    lo = max(lo, 1e-4)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect")
    ax.set_xscale("log")
    ax.set_xlabel("mean predicted CTR (decile of predictions)")
    ax.set_ylabel("observed CTR")
    ax.set_title("Calibration on the test window")
    ax.legend(fontsize=8)
    return png_bytes(fig, dpi=110)


def ne_curve_plot(curve: list[dict[str, float]], trees_lr_ne: float) -> bytes:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c["trees"] for c in curve], [c["ne"] for c in curve], marker=".", label="trees only (re-calibrated)")
    ax.axhline(trees_lr_ne, color="C1", ls="--", label=f"trees+LR (all trees) NE={trees_lr_ne:.4f}")
    ax.set_xlabel("number of boosted trees")
    ax.set_ylabel("normalized entropy (test)")
    ax.set_title("NE by number of trees")
    ax.legend(fontsize=8)
    return png_bytes(fig, dpi=110)


def table1_markdown(metrics: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| model | NE | NE relative to trees only | calibration | AUC | log loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        rel = m.get("ne_relative_to_trees")
        auc = m.get("auc")
        lines.append(
            f"| {name} | {m['ne']:.4f} | {'' if rel is None else f'{rel * 100:.1f}%'} | "
            f"{m['calibration']:.3f} | {'' if auc is None else f'{auc:.4f}'} | {m['log_loss']:.5f} |"
        )
    return "\n".join(lines)


def visual_sentence(report: dict[str, Any]) -> str:
    v = report.get("visual_features_effect")
    if not v:
        return "visual features: none in this feature set (no comparison)"
    verdict = "IMPROVED" if v["improved"] else "did NOT improve"
    return (
        f"visual features (tags + embedding PCA) {verdict} NE: {v['ne_without']:.4f} without -> "
        f"{v['ne_with']:.4f} with ({v['relative_change'] * 100:+.1f}%)"
    )


def report_markdown(report: dict[str, Any]) -> str:
    rows = dict(report["metrics_test"])
    if report.get("ground_truth_test"):
        rows["ground_truth (synthetic oracle)"] = report["ground_truth_test"]
    label = " — SYNTHETIC impressions" if report["synthetic"] else ""
    sp = report["splits"]
    return "\n".join(
        [
            f"# CTR report {report['ctr_version']}{label}",
            "",
            f"features `{report['feature_version']}` from {', '.join(report['sources'])}; "
            f"train {sp['train']['rows']} rows ({sp['train']['clicks']} clicks), validation "
            f"{sp['validation']['rows']} ({sp['validation']['clicks']}), test {sp['test']['rows']} "
            f"({sp['test']['clicks']}); time-ordered split.",
            "",
            f"Trees: {report['trees']['best_iteration']} (early stopping), negatives down-sampled at "
            f"w = {report['negative_rate']}, re-calibrated q = p/(p+(1-p)/w); leaf vector "
            f"{report['leaf_vector_size']} wide, raw one-hot {report['raw_vector_size']} wide.",
            "",
            "## Test-window metrics (Table 1 style: NE relative to trees only)",
            "",
            table1_markdown(rows),
            "",
            visual_sentence(report),
            "",
            "![calibration](calibration.png) ![NE by number of trees](ne_by_trees.png)",
            "",
        ]
    )


def report_html(report: dict[str, Any], pictures: dict[str, bytes]) -> str:
    """The self-contained HTML report (jinja2 ``resources/templates/ctr_report.html``, the pictures
    inlined as data: URIs like the evaluation report)."""
    rows = dict(report["metrics_test"])
    best = min(rows, key=lambda n: rows[n]["ne"]) if rows else ""
    if report.get("ground_truth_test"):
        rows["ground_truth (synthetic oracle)"] = report["ground_truth_test"]
    return render("ctr_report.html", report=report, rows=rows, best=best, pictures=pictures,
                  visual_sentence=visual_sentence(report))
