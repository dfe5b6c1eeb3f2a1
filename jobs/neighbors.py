"""Build the faiss index of one model version and write gold.item_neighbors.

Reads gold.item_embeddings (model_version), L2-normalises, builds the index (retrieval.index:
flat = exact inner product, or ivf / hnsw), saves it under <lakehouse>/indexes/<model_version>/
(index.faiss + item_ids.json) and writes the k nearest items of every item (self excluded) as
(model_version, item_id, rank, neighbor_id, score = cosine). The model version's rows are
replaced as a whole, so a re-run leaves the same table. Invalid embeddings (wrong dimension,
NaN, zero vector) go to bronze/quarantine with reason invalid_embedding.

example:
  spark-submit jobs/neighbors.py --lakehouse lakehouse --model-version latest -k 10
"""

from __future__ import annotations

import sys

from _common import config_from_args, model_parser, run_job

from catalog2vec import models
from catalog2vec.retrieval.neighbors import build_neighbors
from catalog2vec.spark import get_spark


def get_args_parser():  # type: ignore[no-untyped-def]
    parser = model_parser("neighbors", __doc__ or "")
    parser.add_argument("-k", type=int, default=None, help="neighbours per item (default retrieval.k)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        mv = models.resolve(cfg.lakehouse, args.model_version)
        spark = get_spark("neighbors", cfg.spark.master, cfg.spark.conf)
        counts = build_neighbors(spark, cfg, mv, args.k)
        print(f"[neighbors] {counts}")
        print(f"[neighbors] table: {cfg.lakehouse}/gold/item_neighbors; index: {counts['index_dir']}")
        return counts

    return run_job("neighbors", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
