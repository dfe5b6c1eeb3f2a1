"""Build gold/ctr_features: impressions + item tags/embeddings, time-ordered train/validation/test.

With --model-version (or 'latest' = newest <lakehouse>/models/*/model_card.json) the item's top
tags (gold.item_tags) become numeric tag:<word> features and its embedding (gold.item_embeddings)
is reduced by a PCA fitted on the train window (emb_pca_<i>). Without one, raw features only.
The table is replaced per feature version (default '<source or all>-<model_version or raw>').

examples:
  spark-submit jobs/build_ctr_features.py --lakehouse lakehouse --source synthetic --model-version latest
  spark-submit jobs/build_ctr_features.py --lakehouse lakehouse --source ipinyou
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import names
from catalog2vec.ctr.features import build_ctr_features
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("build_ctr_features", __doc__ or "")
    parser.add_argument("--model-version", default=None, type=names.arg_type("model_version", model_ref=True), help="item feature model version, or 'latest'")
    parser.add_argument("--source", default=None, help="only impressions of this source (e.g. synthetic, ipinyou)")
    parser.add_argument("--feature-version", default=None, type=names.arg_type("feature_version"), help="name of this feature set")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        spark = get_spark("build_ctr_features", cfg.spark.master, cfg.spark.conf)
        counts = build_ctr_features(spark, cfg, args.model_version, args.source, args.feature_version)
        print(f"[build_ctr_features] {counts}")
        print(f"[build_ctr_features] table: {cfg.lakehouse}/gold/ctr_features (feature_version={counts.feature_version})")
        return counts

    return run_job("build_ctr_features", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
