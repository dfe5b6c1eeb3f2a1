"""Embed silver/images with a trained model → gold/item_embeddings + gold/item_tags.

Runs the model over silver/images with pyspark.ml.functions.predict_batch_udf (model loaded once
per Python worker, batched, eval mode + inference_mode, bf16 autocast + channels_last on CUDA) and
MERGEs per model_version: gold/item_embeddings (embedding, L2 norm, image sha256) and
gold/item_tags (top embed.top_n tags with probability and rank); with embed.full_probabilities
also gold/item_tag_probabilities. Incremental by default: items whose image sha256 already has a
row for this model_version are skipped; --full recomputes them. --from-staging merges results
staged by the Beam pipeline (pipelines/embed.py) instead of running the model.

--model-version latest (the default) resolves <lakehouse>/models/LATEST (written by the training
job), else the newest model directory.
--model-version champion (any MLflow alias) resolves, through the model registry of
[mlflow] tracking_uri, to the catalog2vec version tagged on the registered model version.

examples:
  spark-submit jobs/embed.py --lakehouse lakehouse --model-version latest
  spark-submit jobs/embed.py --lakehouse lakehouse --model-version m-20261123 --full --batch-size 128
  spark-submit jobs/embed.py --lakehouse lakehouse --model-version champion --set mlflow.tracking_uri=sqlite:///mlflow.db
  spark-submit jobs/embed.py --lakehouse lakehouse --model-version m-20261123 --from-staging staging/embed
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import names
from catalog2vec.embed.job import merge_staged, run_embed
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("embed", __doc__ or "")
    parser.add_argument(
        "--model-version",
        default="latest",
        type=names.arg_type("model_version", model_ref=True),
        help="model directory name under <lakehouse>/models/, 'latest' (default), or an MLflow registry alias "
        "of [mlflow] model_name (e.g. 'champion', or models:/catalog2vec@champion)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (default: embed.batch_size)")
    parser.add_argument("--full", action="store_true", help="recompute items that already have rows for this version")
    parser.add_argument(
        "--from-staging",
        default=None,
        metavar="PATH",
        help="merge Parquet results written by pipelines/embed.py (Beam) instead of running the model",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.batch_size is not None and args.batch_size < 1:
        print("[embed] error: --batch-size must be >= 1", file=sys.stderr)
        return 2

    def work() -> object:
        spark = get_spark("embed", cfg.spark.master, cfg.spark.conf)
        if args.from_staging:
            version, counts = merge_staged(spark, cfg, args.from_staging, args.model_version, full=args.full)
        else:
            version, counts = run_embed(spark, cfg, args.model_version, args.batch_size, full=args.full)
        print(f"[embed] model_version={version} {counts}")
        print(f"[embed] tables: {cfg.lakehouse}/gold/item_embeddings, {cfg.lakehouse}/gold/item_tags")
        return {"model_version": version, "counts": counts}

    return run_job("embed", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
