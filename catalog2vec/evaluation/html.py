"""Render the evaluation report as one self-contained HTML page (pictures inlined as base64).

The page is the jinja2 template ``resources/templates/evaluation_report.html`` (through
:mod:`catalog2vec.templates`, shared with the CTR report and the neighbour browser); this module only
shapes ``report.json`` into the template's tables: rows of (metric, one cell per feature set) with the
best value of each row marked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from catalog2vec.templates import render

FEATURE_SETS = ("model", "random_weights", "color_histogram")
# label-prediction methods, in column order; the word-frequency prior is a method of its own
LABEL_METHODS = ("head", "knn_transfer", "prior")


@dataclass(frozen=True)
class Row:
    label: str
    values: list[Any]
    best: list[bool]


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[Row]


def comparison_table(rows: list[tuple[str, dict[str, Any]]], columns: list[str]) -> Table:
    """Rows = (metric label, {column: value}); in each row the highest number is marked best."""
    out = []
    for label, vals in rows:
        values = [vals.get(c) for c in columns]
        nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        top = max(nums) if nums else None
        out.append(Row(label, values, [top is not None and v == top for v in values]))
    return Table(list(columns), out)


def _label_prediction(lp: dict[str, Any], feats: list[str]) -> Table:
    cols = [(f, kind) for f in [*feats, "word_frequency_prior"] for kind in LABEL_METHODS if kind in lp.get(f, {})]
    ks = sorted({k for f in lp.values() for d in f.values() for k in d if k.startswith("recall@")},
                key=lambda s: int(s[7:]))
    names = [f if kind == "prior" else f"{f}:{kind}" for f, kind in cols]
    return comparison_table(
        [(k, {n: lp[f][kind].get(k) for n, (f, kind) in zip(names, cols, strict=True)}) for k in ks], names
    )


def per_color(probe: dict[str, Any], feats: list[str]) -> tuple[Table | None, list[dict[str, Any]]]:
    """The colour probe's per-colour F1 of every feature set (rows: the model's top colours, most
    frequent first) and, per colour, what each feature set most often called it instead."""
    order = [c["class"] for c in probe.get("model", {}).get("color", {}).get("per_class", [])]
    if not order:
        return None, []
    by_feat = {f: {c["class"]: c for c in probe.get(f, {}).get("color", {}).get("per_class", [])} for f in feats}
    support = {c: by_feat["model"][c]["support"] for c in order}
    table = comparison_table(
        [(f"{c} (n={support[c]}) F1", {f: by_feat[f].get(c, {}).get("f1") for f in feats}) for c in order], feats)
    confusion = [
        {"color": c, "support": support[c],
         "cells": [(by_feat[f].get(c, {}).get("most_confused_with", ""), by_feat[f].get(c, {}).get("confused_share"))
                   for f in feats]}
        for c in order
    ]
    return table, confusion


def context(report: dict[str, Any]) -> dict[str, Any]:
    """Everything the template shows, computed from ``report.json``."""
    feats = [f for f in FEATURE_SETS if f in report.get("retrieval", {})]
    headline = report.get("headline", {})
    metrics = list(next(iter(headline.values()), {}).keys())
    retrieval = {
        rel: comparison_table(
            [(k, {f: report["retrieval"][f][rel].get(k) for f in feats})
             for k in report["retrieval"][feats[0]][rel] if "@" in k], feats)
        for rel in ("category", "category_color")
    } if feats else {}
    probe = comparison_table(
        [(f"{attr} {m}", {f: report["linear_probe"][f][attr].get(m) for f in feats})
         for attr in ("category", "color", "gender") for m in ("accuracy", "macro_f1")], feats,
    ) if report.get("linear_probe") else None
    color_f1, color_confusion = per_color(report.get("linear_probe", {}), feats) if feats else (None, [])
    cl = report.get("clustering", {})
    clustering = comparison_table(
        [(f"test k-means {m} vs category", {f: cl[f]["test_kmeans"].get(m) for f in feats}) for m in ("nmi", "purity")],
        feats,
    ) if all(f in cl for f in feats) and feats else None
    sim = report.get("similarity", {})
    sim_tables: dict[str, Table] = {}
    if sim.get("available"):
        if "pair_auc" in sim:
            sim_tables["pair_auc"] = comparison_table([("pair AUC", sim["pair_auc"])], ["pan", "cosine"])
        sim_tables["retrieval"] = comparison_table(
            [(f"{rel} {k}", {n: sim["retrieval"][n][rel][k] for n in ("pan", "cosine")})
             for rel in ("category_color", "category") for k in sim["retrieval"]["pan"][rel]],
            ["pan", "cosine"],
        )
    return {
        "report": report,
        "verdict": report.get("verdict", {}),
        "counts": json.dumps(report.get("counts")),
        "headline": comparison_table([(m, {f: headline.get(f, {}).get(m) for f in feats}) for m in metrics], feats),
        "retrieval": retrieval,
        "label_prediction": _label_prediction(report.get("label_prediction", {}), feats),
        "probe": probe,
        "color_f1": color_f1,
        "color_confusion": color_confusion,
        "features": feats,
        "clustering": clustering,
        "spark_job": cl.get("model", {}).get("spark_job"),
        "similarity": sim,
        "similarity_tables": sim_tables,
    }


def render_html(report: dict[str, Any], pictures: dict[str, bytes]) -> str:
    """The self-contained page: ``report.json`` as tables, every picture inlined as a data: URI."""
    return render("evaluation_report.html", pictures=pictures, **context(report))


__all__ = ["FEATURE_SETS", "LABEL_METHODS", "Row", "Table", "comparison_table", "context", "per_color", "render_html"]
