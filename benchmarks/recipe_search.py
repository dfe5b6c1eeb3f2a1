"""Recipe search on the bundled demo sample, JVM-free: train one configuration with the real
training loop (catalog2vec.vision.train) on a lakehouse that already holds the sample's tables
(``scripts/demo.py`` up to ingest_images), then score the test split on the report's seven
headline metrics against the random-weights network and the colour histogram (the same metric
functions as catalog2vec.evaluation.report, without Spark), plus the collapse diagnostics.

    python benchmarks/recipe_search.py --lakehouse /tmp/lh --name cosine --set train.head='"cosine"' ...

Prints one JSON line per run (and appends it to --out). Used to pick conf/local.toml's recipe
(BENCHMARKS.md, "Model recipe").
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def headline(x_test: np.ndarray, x_train: np.ndarray, test_meta: list[dict[str, str]],
             train_meta: list[dict[str, str]], test_labels: list[list[int]], train_labels: list[list[int]],
             num_words: int, k_clusters: int) -> dict[str, float]:
    from sklearn.cluster import KMeans

    from catalog2vec.evaluation import metrics as M
    from catalog2vec.evaluation.features import linear_probe
    from catalog2vec.evaluation.report import _knn_word_transfer
    from catalog2vec.vectors import l2_normalize

    cat = [m["category"] for m in test_meta]
    catcol = [f"{m['category']}|{m['color']}" for m in test_meta]
    ranked = M.rank_by_cosine(x_test, x_test, exclude_self=True)
    out = {
        "retrieval:category:precision@10": M.retrieval_report_from_ranking(ranked, cat, (10,))["precision@10"],
        "retrieval:category_color:precision@10":
            M.retrieval_report_from_ranking(ranked, catcol, (10,))["precision@10"],
    }
    for attr in ("category", "color", "gender"):
        p = linear_probe(x_train, [m[attr] for m in train_meta], x_test, [m[attr] for m in test_meta])
        out[f"linear_probe:{attr}:accuracy"] = p["accuracy"]
        out[f"linear_probe:{attr}:macro_f1"] = p["macro_f1"]
    km = KMeans(n_clusters=k_clusters, n_init=4, random_state=0).fit(l2_normalize(x_test))
    out["clustering:test_kmeans:nmi"] = M.nmi(cat, km.labels_)
    knn = M.top_k_from_scores(_knn_word_transfer(x_train, train_labels, x_test, num_words), 10)
    out["label_prediction:knn_transfer:recall@5"] = M.tag_recall_at_k(knn.tolist(), test_labels, 5)
    out.update({f"collapse:{k}": v for k, v in M.collapse_diagnostics(x_test).items()
                if k in ("mean_pairwise_cosine", "effective_rank")})
    return {k: round(float(v), 4) for k, v in out.items()}


HEADLINE = ("retrieval:category:precision@10", "retrieval:category_color:precision@10",
            "linear_probe:category:accuracy", "linear_probe:color:accuracy", "linear_probe:gender:accuracy",
            "clustering:test_kmeans:nmi", "label_prediction:knn_transfer:recall@5")


def main(argv: list[str] | None = None) -> int:
    import torch

    from catalog2vec.config import load_config
    from catalog2vec.evaluation.features import color_histograms, random_weights_model
    from catalog2vec.retrieval.query import embed_images
    from catalog2vec.vision.data import latest_vocab_version, load_image_bytes, load_index
    from catalog2vec.vision.model import load_model_dir
    from catalog2vec.vision.train import train_entry

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lakehouse", required=True)
    ap.add_argument("--config", default=str(REPO / "conf" / "local.toml"))
    ap.add_argument("--styles", default=str(REPO / "examples" / "data" / "styles.csv"))
    ap.add_argument("--name", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--baselines", action="store_true", help="also score random weights + colour histogram")
    ap.add_argument("--baselines-only", action="store_true",
                    help="no training: score the random-weights network of this config + the colour histogram")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)

    torch.set_num_threads(2)
    cfg = load_config(args.config, [*args.overrides, f'train.model_version="{args.name}"'], lakehouse=args.lakehouse)
    t0 = time.time()
    index = load_index(args.lakehouse, latest_vocab_version(args.lakehouse))  # unfiltered labels for scoring
    t = cfg.train
    if args.baselines_only:
        card: dict[str, Any] = {"arch": t.arch, "num_words": index.vocab.size, "embedding_dim": t.embed_dim,
                                "projected": bool(t.embed_dim), "loss": t.loss, "head": t.head}
        size = t.image_size
    else:
        result = train_entry(cfg.to_dict())
        assert result is not None
        loaded = load_model_dir(result["model_dir"])
        card, size = loaded.card, loaded.image_size
    train_s = time.time() - t0
    with open(args.styles, encoding="utf-8") as fh:
        meta = {r["id"]: {"category": r["articleType"], "color": r["baseColour"], "gender": r["gender"]}
                for r in csv.DictReader(fh)}
    te, tr = index.splits["test"], index.splits["train"]
    te_b, tr_b = load_image_bytes(args.lakehouse, te.item_ids), load_image_bytes(args.lakehouse, tr.item_ids)
    te_m, tr_m = [meta[i] for i in te.item_ids], [meta[i] for i in tr.item_ids]
    k = max(2, min(cfg.cluster.k, len(te.item_ids) // 2))

    def score(xt: np.ndarray, xtr: np.ndarray) -> dict[str, float]:
        return headline(xt, xtr, te_m, tr_m, te.labels, tr.labels, index.vocab.size, k)

    rows: dict[str, Any] = {}
    if not args.baselines_only:
        rows["model"] = score(embed_images(loaded.model, size, te_b), embed_images(loaded.model, size, tr_b))
    if args.baselines or args.baselines_only:
        net = random_weights_model(card, seed=0)
        rows["random_weights"] = score(embed_images(net, size, te_b), embed_images(net, size, tr_b))
        rows["color_histogram"] = score(color_histograms(te_b), color_histograms(tr_b))
    metrics = card.get("metrics", {})
    line = {"name": args.name, "overrides": args.overrides, "train_s": round(train_s, 1),
            "steps": card.get("steps"), "images_per_s": card.get("images_per_s"),
            "val_curve": [{k2: round(v, 4) if isinstance(v, float) else v for k2, v in e.items()
                           if k2 in ("epoch", "train_loss_ema", "val_precision@5", "val_map")}
                          for e in metrics.get("per_epoch", [])],
            "test_tag_metrics": metrics.get("test"), "frequency_baseline": card.get("baseline_frequency"),
            "collapse_card": card.get("collapse"), **rows}
    print(json.dumps(line))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    if "model" in rows and args.baselines:
        for base in ("random_weights", "color_histogram"):
            wins = sum(rows["model"][m] > rows[base][m] for m in HEADLINE)
            print(f"wins vs {base}: {wins}/7", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
