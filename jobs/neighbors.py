"""Build the faiss index of one model version and write gold.item_neighbors.

Reads gold.item_embeddings (model_version) in the executors, builds the index (retrieval.index =
auto: exact inner product up to retrieval.exact_max_items items, IVF trained on a driver sample of
retrieval.train_sample vectors above), saves it in parts under <lakehouse>/indexes/<model_version>/
and writes the k nearest items of every item (self excluded), searched in the executors, as
(model_version, item_id, rank, neighbor_id, score = cosine). The model version's rows are
replaced as a whole, so a re-run leaves the same table. IVF: recall@k against exact search is
measured and recorded in the counts. Invalid embeddings (wrong dimension, NaN, zero vector) go to
bronze/quarantine with reason invalid_embedding. --incremental adds the items embedded since the
saved index to it (no rebuild) and updates the neighbours they change. See docs/scale.md.

example:
  spark-submit jobs/neighbors.py --lakehouse lakehouse --model-version latest -k 10
  spark-submit jobs/neighbors.py --lakehouse lakehouse --model-version latest --incremental
"""

from __future__ import annotations

import argparse
import sys

from _common import config_from_args, model_parser, run_job

from catalog2vec import models
from catalog2vec.retrieval.neighbors import build_neighbors, update_neighbors
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = model_parser("neighbors", __doc__ or "")
    parser.add_argument("-k", type=int, default=None, help="neighbours per item (default retrieval.k)")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="add the items embedded since the saved index to it and update their neighbours and the "
        "existing items' whose top-k they enter (no rebuild)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        mv = models.resolve(cfg.lakehouse, args.model_version)
        spark = get_spark("neighbors", cfg.spark.master, cfg.spark.conf)
        counts = (update_neighbors if args.incremental else build_neighbors)(spark, cfg, mv, args.k)
        print(f"[neighbors] {counts}")
        print(f"[neighbors] table: {cfg.lakehouse}/gold/item_neighbors; index: {counts['index_dir']}")
        return counts

    return run_job("neighbors", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
