"""Train the Facebook-style CTR model (boosted trees -> leaf one-hot -> logistic regression)
with its baselines (LR only, trees only, trees+LR without visual features) on gold/ctr_features.

Writes <lakehouse>/models/ctr/<version>/ (booster.txt, *_lr MLlib models, model_card.json),
gold.ctr_predictions and gold.ctr_metrics (test window), and a report with the paper-style
Table 1, a calibration plot and an NE-by-number-of-trees curve under <lakehouse>/reports/ctr/<version>/.

examples:
  spark-submit jobs/train_ctr.py --lakehouse lakehouse --feature-version ipinyou-raw
  spark-submit jobs/train_ctr.py --lakehouse lakehouse --feature-version synthetic-<model_version>
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import names
from catalog2vec.ctr.report import table1_markdown, visual_sentence
from catalog2vec.ctr.train import train_ctr
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("train_ctr", __doc__ or "")
    parser.add_argument("--feature-version", required=True, type=names.arg_type("feature_version"), help="gold.ctr_features version to train on")
    parser.add_argument("--version", default=None, type=names.arg_type("version"), help="CTR model version (default: the feature version)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        spark = get_spark("train_ctr", cfg.spark.master, cfg.spark.conf)
        report = train_ctr(spark, cfg, args.feature_version, args.version)
        if report["synthetic"]:
            print("[train_ctr] NOTE: SYNTHETIC impressions (catalog2vec.ctr.simulate), not real clicks")
        print(table1_markdown(report["metrics_test"]))
        print(f"[train_ctr] {visual_sentence(report)}")
        print(f"[train_ctr] model: {report['model_dir']}")
        print(f"[train_ctr] report: {report['report_dir']}/report.html")
        return {"metrics_test": report["metrics_test"], "model_dir": report["model_dir"]}

    return run_job("train_ctr", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
