"""Train the attribute-aware similarity head (PAN, Mishra et al. 2021) on frozen embeddings.

Pairs of train-split items: positives share category + colour, negatives are sampled
(similarity.neg_per_pos per positive). C = similarity.conditions condition scores s_c and
relevance weights w_c, p = sum_c w_c s_c; condition c is supervised with weight similarity.lam
by a vocabulary word through similarity.attribute_fn (xnor | or | and). Saved to
<lakehouse>/similarity/<model_version>/ (pan.pt, pan_card.json with held-out pair AUC vs cosine).

example:
  spark-submit jobs/train_similarity.py --lakehouse lakehouse --model-version latest \\
      --set similarity.attribute_fn="or" --set similarity.lam=0.5
"""

from __future__ import annotations

import argparse
import sys

from _common import config_from_args, model_parser, run_job

from catalog2vec import models
from catalog2vec.similarity.training import train_similarity
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = model_parser("train_similarity", __doc__ or "")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        import torch

        torch.set_num_threads(min(4, torch.get_num_threads()))  # small MLP: few threads are fastest
        mv = models.resolve(cfg.lakehouse, args.model_version)
        spark = get_spark("train_similarity", cfg.spark.master, cfg.spark.conf)
        summary = train_similarity(spark, cfg, mv)
        print(f"[train_similarity] {summary}")
        return summary

    return run_job("train_similarity", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
