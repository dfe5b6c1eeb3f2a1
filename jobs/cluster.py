"""k-means clustering of one model version's embeddings with prototypes.

Spark MLlib KMeans (k = cluster.k) on L2-normalised embeddings (Euclidean k-means on unit
vectors = clustering by cosine), read from gold.item_embeddings by the executors: the driver holds
the k centroids and the prototype ids, never the vectors. Writes gold.clusters (cluster, centroid,
size, the cluster.prototypes items nearest the centroid, by a window rank) and gold.item_clusters
(item_id, cluster, cosine distance to the centroid); the version's rows are replaced as a whole
(idempotent). New items are assigned to the nearest prototype in the executors with
catalog2vec.clustering.build.assign_new_items (the prototypes broadcast). See docs/scale.md.

example:
  spark-submit jobs/cluster.py --lakehouse lakehouse --model-version latest --set cluster.k=12
"""

from __future__ import annotations

import argparse
import sys

from _common import config_from_args, model_parser, run_job

from catalog2vec import models
from catalog2vec.clustering.build import build_clusters
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = model_parser("cluster", __doc__ or "")
    parser.add_argument("-k", type=int, default=None, help="number of clusters (default cluster.k)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        mv = models.resolve(cfg.lakehouse, args.model_version)
        spark = get_spark("cluster", cfg.spark.master, cfg.spark.conf)
        counts = build_clusters(spark, cfg, mv, args.k)
        print(f"[cluster] {counts}")
        print(f"[cluster] tables: {cfg.lakehouse}/gold/clusters, {cfg.lakehouse}/gold/item_clusters")
        return counts

    return run_job("cluster", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
