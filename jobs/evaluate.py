"""Evaluate one model version against two baselines on the test split; write the report.

Sections (each for the model, the same network with random weights, and a colour histogram):
retrieval precision/recall/hit@k (k = 1, 5, 10, 20; relevant = same category, and same
category + colour), label prediction (top-k recall of the item's own words, k = 3, 5, 10), linear
probe (category / colour / gender accuracy and macro-F1, trained on the train split), clustering
(NMI / purity vs category), and PAN vs cosine when jobs/train_similarity.py has run. A model that
does not beat both baselines is flagged loudly (report banner, stderr, exit code 0 unless
--fail-if-worse). Output: <lakehouse>/reports/<model_version>/report.json + report.html + PNGs.

example:
  spark-submit jobs/evaluate.py --lakehouse lakehouse --model-version latest
"""

from __future__ import annotations

import argparse
import sys

from _common import config_from_args, model_parser, run_job

from catalog2vec import layout, models
from catalog2vec.evaluation.report import evaluate
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = model_parser("evaluate", __doc__ or "")
    parser.add_argument(
        "--reports", default=None, help="output directory (default <lakehouse>/reports/<model_version>)"
    )
    parser.add_argument(
        "--max-train", type=int, default=None,
        help="train-split items used by probe / kNN, sampled by hash of item_id (default: evaluation.max_train_items)",
    )
    parser.add_argument(
        "--fail-if-worse", action="store_true", help="exit 3 when the model does not beat both baselines"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)
    state: dict[str, bool] = {"worse": False}

    def work() -> object:
        mv = models.resolve(cfg.lakehouse, args.model_version)
        spark = get_spark("evaluate", cfg.spark.master, cfg.spark.conf)
        out = args.reports or str(layout.report_dir(cfg.lakehouse, mv))
        report = evaluate(spark, cfg, mv, out, max_train=args.max_train)
        for name, row in report["headline"].items():
            print(
                f"[evaluate] {name:>16}: "
                + ", ".join(f"{k.split(':', 1)[1]}={v:.3f}" for k, v in row.items() if v is not None)
            )
        sim = report.get("similarity", {})
        if sim.get("pair_auc"):
            print(
                f"[evaluate] PAN pair AUC {sim['pair_auc']['pan']:.3f} vs cosine {sim['pair_auc']['cosine']:.3f}"
            )
        if report["verdict"]["flag"]:
            bar = "!" * 100
            print(f"{bar}\n[evaluate] {report['verdict']['flag']}\n{bar}", file=sys.stderr)
            state["worse"] = True
        print(f"[evaluate] report: {out}/report.html ({out}/report.json)")
        return {"headline": report["headline"], "verdict": report["verdict"]}

    rc = run_job("evaluate", work, cfg)
    if rc == 0 and state["worse"] and args.fail_if_worse:
        return 3
    return rc


if __name__ == "__main__":
    sys.exit(main())
