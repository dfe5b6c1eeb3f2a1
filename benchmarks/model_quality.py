"""Model quality on the full shared Myntra catalog: the real jobs (ingest_catalog, build_vocab,
build_labels, ingest_images, train, embed, evaluate — each job's own ``main(argv)``, as
scripts/demo.py runs them) with conf/local.toml, then the project's evaluation report, printed
as the model against both baselines (random-weights network, colour histogram) on the test split
with the per-epoch validation curve of the training run and the issue-13/31 targets:

* category precision@10 >= 1.5x the same network with random weights;
* category+colour precision@10 >= 1.5x the same network with random weights (issue 31);
* category linear-probe macro-F1 >= 0.73;
* colour linear-probe macro-F1 >= 1.3x the colour histogram's;

and the colour probe's per-colour F1 and most common confusion of the top colours (issue 31).
The probe is trained on the whole train split (``--max-train``, default 1,000,000: every
train-split item, as the 2026-12-04 run did; the report's own default samples 2,000).

    .venv/bin/python benchmarks/model_quality.py                     # local config as shipped
    .venv/bin/python benchmarks/model_quality.py --variant long      # longer training (96 px, 12 epochs)
    .venv/bin/python benchmarks/model_quality.py --set train.epochs=2 # any override

Tables are built once per --lakehouse (``--reuse`` skips the ingest/vocab/label/image jobs when
they are there); each variant trains its own model version. Results: one JSON per run under
--out (default benchmarks/results/model_quality_<variant>.json) and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

SHARED = REPO.parent / "shared" / "data" / "myntra"
MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"
VARIANTS: dict[str, tuple[str, ...]] = {
    "local": (),
    # more compute, same recipe: 96 px, 12 epochs (about 45 min of training on the idle 2-core machine)
    "long": ("train.image_size=96", "train.epochs=12"),
}
ROWS = (
    ("retrieval", "category", "precision@10"),
    ("retrieval", "category_color", "precision@10"),
    ("linear_probe", "category", "accuracy"),
    ("linear_probe", "category", "macro_f1"),
    ("linear_probe", "color", "accuracy"),
    ("linear_probe", "color", "macro_f1"),
    ("linear_probe", "gender", "accuracy"),
    ("clustering", "test_kmeans", "nmi"),
    ("label_prediction", "knn_transfer", "recall@5"),
)
FEATURES = ("model", "random_weights", "color_histogram")


def value(report: dict[str, Any], feat: str, sec: str, group: str, metric: str) -> float | None:
    try:
        v = report[sec][feat][group][metric]
    except (KeyError, TypeError):
        return None
    return None if v is None else float(v)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    cat_p10 = ratio(value(report, "model", "retrieval", "category", "precision@10"),
                    value(report, "random_weights", "retrieval", "category", "precision@10"))
    catcol_p10 = ratio(value(report, "model", "retrieval", "category_color", "precision@10"),
                       value(report, "random_weights", "retrieval", "category_color", "precision@10"))
    cat_f1 = value(report, "model", "linear_probe", "category", "macro_f1")
    col = ratio(value(report, "model", "linear_probe", "color", "macro_f1"),
                value(report, "color_histogram", "linear_probe", "color", "macro_f1"))
    return {
        "category_p10_vs_random": {"value": cat_p10, "target": 1.5, "met": bool(cat_p10 and cat_p10 >= 1.5)},
        "category_color_p10_vs_random": {"value": catcol_p10, "target": 1.5,
                                         "met": bool(catcol_p10 and catcol_p10 >= 1.5)},
        "category_probe_macro_f1": {"value": cat_f1, "target": 0.73, "met": bool(cat_f1 and cat_f1 >= 0.73)},
        "color_probe_f1_vs_histogram": {"value": col, "target": 1.3, "met": bool(col and col >= 1.3)},
    }


def print_summary(report: dict[str, Any], card: dict[str, Any], timings: dict[str, float]) -> None:
    print(f"\nmodel {report['model_version']}  test items {report['counts']['test_items']}")
    print(f"{'metric':<44}" + "".join(f"{f:>17}" for f in FEATURES))
    for sec, group, metric in ROWS:
        cells = [value(report, f, sec, group, metric) for f in FEATURES]
        print(f"{sec + ':' + group + ':' + metric:<44}" + "".join(
            f"{'-' if c is None else f'{c:.4f}':>17}" for c in cells))
    for f in FEATURES:
        c = (report.get("collapse") or {}).get(f, {})
        print(f"collapse {f:<16} mean pairwise cosine {c.get('mean_pairwise_cosine')}  "
              f"effective rank {c.get('effective_rank')}")
    print("verdict:", json.dumps(report.get("verdict")))
    print("\nper-epoch validation (tag ranking on the val split):")
    for e in card.get("metrics", {}).get("per_epoch", []):
        print(f"  epoch {e['epoch']:>2} step {e['step']:>5} loss_ema {e['train_loss_ema']:.4f} lr {e['lr']:.2e} "
              f"val p@5 {e.get('val_precision@5', 0):.4f} val mAP {e.get('val_map', 0):.4f} "
              f"{e.get('epoch_images_per_s', 0):.1f} img/s")
    print("\ncolour probe per colour (F1; most confused with, share):")
    for f in FEATURES:
        rows = (report.get("linear_probe", {}).get(f) or {}).get("color", {}).get("per_class", [])
        print(f"  {f:<16}" + "  ".join(f"{r['class']}(n={r['support']}) {r['f1']:.2f}"
                                        f"{' ->' + r['most_confused_with'] if r['most_confused_with'] else ''}"
                                        for r in rows))
    print("targets:", json.dumps(targets(report)))
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def main(argv: list[str] | None = None) -> int:
    from demo import run_steps

    from catalog2vec import models, storage

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED, help="a Myntra-layout folder: styles.csv + images/")
    ap.add_argument("--lakehouse", default="/tmp/catalog2vec-model-quality/lakehouse")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="local")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--reuse", action="store_true", help="keep existing tables (skip the four data jobs)")
    ap.add_argument("--max-train", type=int, default=1_000_000,
                    help="train-split items the probe and kNN transfer use (default: all of them)")
    ap.add_argument("--out", default="")
    ap.add_argument("--data-only", action="store_true", help="build the four data tables, train nothing")
    args = ap.parse_args(argv)
    if not (args.data / "styles.csv").is_file():
        print(f"model_quality: {args.data}/styles.csv not found", file=sys.stderr)
        return 2
    lh = storage.normalize(args.lakehouse)
    overrides = [*VARIANTS[args.variant], *args.overrides]
    name = f"mq-{args.variant}" + (f"-{zlib.crc32(repr(args.overrides).encode()) % 10**6}" if args.overrides else "")  # stable across runs
    common = ["--lakehouse", lh, "--run-id", name, *[f"--set={o}" for o in overrides]]
    data_steps = [
        ("ingest_catalog", ["--lakehouse", lh, "--run-id", name, "--input", str(args.data / "styles.csv"),
                            "--format", "csv", "--source", "myntra", "--mapping", MAPPING,
                            "--image-template", "images/{item_id}.jpg"]),
        ("build_vocab", ["--lakehouse", lh, "--run-id", name]),
        ("build_labels", ["--lakehouse", lh, "--run-id", name]),
        ("ingest_images", ["--lakehouse", lh, "--run-id", name]),
    ]
    have_tables = storage.exists(storage.join(lh, "silver", "images"))
    pipeline = [] if (args.reuse and have_tables) else data_steps
    if args.data_only:
        print("timings (s):", json.dumps({k: round(v, 1) for k, v in run_steps(pipeline)}))
        return 0
    pipeline += [
        ("train", [*common, "--model-version", name]),
        ("embed", [*common, "--model-version", name]),
        ("evaluate", [*common, "--model-version", name, "--max-train", str(args.max_train)]),
    ]
    t0 = time.time()
    timings = dict(run_steps(pipeline))
    timings["total"] = time.time() - t0
    report = storage.read_json(storage.join(lh, "reports", name, "report.json"))
    card = storage.read_json(storage.join(models.model_dir(lh, name), "model_card.json"))
    print_summary(report, card, timings)
    result = {
        "benchmark": "model_quality", "variant": args.variant, "overrides": overrides,
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "timings_s": timings,
        "train_time_s": card.get("train_time_s"), "images_per_s": card.get("images_per_s"),
        "steps": card.get("steps"), "collapse_card": card.get("collapse"),
        "per_epoch": card.get("metrics", {}).get("per_epoch"), "test_tags": card.get("metrics", {}).get("test"),
        "headline": report.get("headline"), "collapse": report.get("collapse"), "verdict": report.get("verdict"),
        "table": {f"{s}:{g}:{m}": {f: value(report, f, s, g, m) for f in FEATURES} for s, g, m in ROWS},
        "targets": targets(report),
        "color_per_class": {f: (report.get("linear_probe", {}).get(f) or {}).get("color", {}).get("per_class")
                            for f in FEATURES},
    }
    out = Path(args.out or REPO / "benchmarks" / "results" / f"model_quality_{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
