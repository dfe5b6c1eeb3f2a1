"""Render the evaluation report as one self-contained HTML page (pictures inlined as base64)."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#e8f5e9}
.flag{background:#b71c1c;color:#fff;padding:1em;font-size:1.3em;font-weight:bold;border-radius:4px}
.ok{background:#1b5e20;color:#fff;padding:.7em;border-radius:4px}img{max-width:100%;border:1px solid #ddd}
code{background:#f3f3f3;padding:1px 4px}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def _comparison_table(rows: list[tuple[str, dict[str, Any]]], columns: list[str]) -> str:
    """Rows = (metric label, {feature: value}); the best value of each row is highlighted."""
    out = ["<table><tr><th>metric</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    for label, vals in rows:
        nums: list[float] = [float(vals[c]) for c in columns if isinstance(vals.get(c), int | float)]
        best = max(nums) if nums else None
        cells = "".join(
            f"<td class='num{' best' if best is not None and vals.get(c) == best else ''}'>{_fmt(vals.get(c))}</td>"
            for c in columns
        )
        out.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _img(pictures: dict[str, bytes], name: str) -> str:
    if name not in pictures:
        return ""
    data = base64.b64encode(pictures[name]).decode("ascii")
    return f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>"


def render_html(report: dict[str, Any], pictures: dict[str, bytes]) -> str:
    feats = [f for f in ("model", "random_weights", "color_histogram") if f in report.get("retrieval", {})]
    v = report.get("verdict", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>catalog2vec report {html.escape(report['model_version'])}</title><style>{CSS}</style></head><body>",
        f"<h1>catalog2vec evaluation — model <code>{html.escape(report['model_version'])}</code></h1>",
        f"<p>vocabulary <code>{html.escape(str(report.get('vocab_version')))}</code>, run "
        f"<code>{html.escape(str(report.get('run_id')))}</code>; counts: {_fmt(json.dumps(report.get('counts')))}</p>",
    ]
    if v.get("flag"):
        parts.append(f"<div class='flag'>{html.escape(v['flag'])}</div>")
    else:
        parts.append(
            f"<div class='ok'>The model beats both baselines (wins vs random weights {v.get('wins_vs_random_weights')}, "
            f"vs colour histogram {v.get('wins_vs_color_histogram')}).</div>"
        )
    parts.append("<h2>Headline metrics (test split)</h2>")
    headline = report.get("headline", {})
    metrics = list(next(iter(headline.values()), {}).keys())
    parts.append(
        _comparison_table([(m, {f: headline.get(f, {}).get(m) for f in feats}) for m in metrics], feats)
    )
    parts.append(_img(pictures, "headline_metrics.png"))

    parts.append(
        "<h2>Retrieval</h2><p>Each test item queries the other test items; relevant = same category "
        "(or same category and colour). recall@k averages over queries with at least one relevant item; "
        "hit@k is the paper's top-k retrieval accuracy.</p>"
    )
    for rel in ("category", "category_color"):
        parts.append(f"<h3>relevant = {rel.replace('_', ' + ')}</h3>")
        keys = [k for k in report["retrieval"][feats[0]][rel] if "@" in k]
        parts.append(
            _comparison_table(
                [(k, {f: report["retrieval"][f][rel].get(k) for f in feats}) for k in keys], feats
            )
        )
    parts.append(_img(pictures, "retrieval_model.png") + _img(pictures, "retrieval_color_histogram.png"))

    parts.append(
        "<h2>Label prediction</h2><p>Top-k recall of each test item's own vocabulary words. "
        "<b>head</b>: the network's word scores; <b>knn_transfer</b>: words of the 10 nearest train items "
        "(cosine-weighted votes); the word-frequency prior ranks words by train frequency.</p>"
    )
    lp = report.get("label_prediction", {})
    cols = [
        f"{f}:{kind}"
        for f in [*feats, "word_frequency_prior"]
        for kind in ("head", "knn_transfer")
        if kind in lp.get(f, {})
    ]
    ks = sorted(
        {k for f in lp.values() for d in f.values() for k in d if k.startswith("recall@")},
        key=lambda s: int(s[7:]),
    )
    parts.append(
        _comparison_table(
            [(k, {c: lp[c.split(":")[0]][c.split(":")[1]].get(k) for c in cols}) for k in ks], cols
        )
    )

    parts.append(
        "<h2>Linear probe</h2><p>LogisticRegression on standardised frozen features, trained on the train "
        "split, scored on the test split.</p>"
    )
    rows = []
    for attr in ("category", "color", "gender"):
        for m in ("accuracy", "macro_f1"):
            rows.append((f"{attr} {m}", {f: report["linear_probe"][f][attr].get(m) for f in feats}))
    parts.append(_comparison_table(rows, feats))

    parts.append("<h2>Clustering</h2>")
    cl = report.get("clustering", {})
    parts.append(
        _comparison_table(
            [
                (f"test k-means {m} vs category", {f: cl[f]["test_kmeans"].get(m) for f in feats})
                for m in ("nmi", "purity")
            ],
            feats,
        )
    )
    job = cl.get("model", {}).get("spark_job")
    if job:
        parts.append(
            f"<p>Spark MLlib clusters of the model (<code>gold.item_clusters</code>, k={job['k']}, "
            f"{job['items']} items): NMI {_fmt(job['nmi_all'])}, purity {_fmt(job['purity_all'])} against category "
            f"(test items only: NMI {_fmt(job['nmi_test'])}, purity {_fmt(job['purity_test'])}).</p>"
        )
    else:
        parts.append(
            "<p>No <code>gold.item_clusters</code> for this model version (run jobs/cluster.py).</p>"
        )
    parts.append(_img(pictures, "cluster_prototypes.png"))

    sim = report.get("similarity", {})
    parts.append("<h2>Attribute-aware similarity (PAN)</h2>")
    if not sim.get("available"):
        parts.append(f"<p>{html.escape(str(sim.get('note', 'not available')))}</p>")
    else:
        parts.append(
            f"<p>attribute words (conditions): {html.escape(', '.join(sim.get('attribute_words', [])))}; "
            f"{sim['test_pairs']} test pairs, {sim['test_positive_pairs']} similar (same category + colour).</p>"
        )
        if "pair_auc" in sim:
            parts.append(_comparison_table([("pair AUC", sim["pair_auc"])], ["pan", "cosine"]))
        rrows = []
        for rel in ("category_color", "category"):
            for k in sim["retrieval"]["pan"][rel]:
                rrows.append((f"{rel} {k}", {n: sim["retrieval"][n][rel][k] for n in ("pan", "cosine")}))
        parts.append(_comparison_table(rrows, ["pan", "cosine"]))
        parts.append(
            "<h3>Which conditions fire</h3><table><tr><th>pair</th><th>similar</th><th>p</th><th>cosine</th>"
            "<th>top conditions (word: weight w, score s)</th></tr>"
        )
        for ex in sim.get("example_pairs", []):
            conds = "; ".join(
                f"{c['word'] or c['condition']}: w={c['w']:.2f} s={c['s']:.2f}" for c in ex["conditions"]
            )
            parts.append(
                f"<tr><td>{html.escape(' vs '.join(ex['pair']))}</td><td>{ex['similar']}</td>"
                f"<td class='num'>{ex['p']:.3f}</td><td class='num'>{ex['cosine']:.3f}</td>"
                f"<td>{html.escape(conds)}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        f"<p>generated in {report.get('seconds')} s; machine-readable: <code>report.json</code></p></body></html>"
    )
    return "\n".join(parts)
