"""Write SYNTHETIC impressions over the lakehouse's catalog items into bronze/impressions.

Labelled source='synthetic' with the ground-truth click probability in true_ctr: clicks come
from a known logistic model in which users (in observed segments) have latent preferences over
the item's TRUE colour and category (bronze.catalog_items), plus position, device, site and hour
effects (see catalog2vec.ctr.simulate). Same parameters -> same rows (MERGE on impression_id).

example:
  spark-submit jobs/simulate_impressions.py --lakehouse lakehouse --impressions 200000
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.ctr.simulate import SimulationParams, simulate_spark, to_bronze
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("simulate_impressions", __doc__ or "")
    d = SimulationParams()
    parser.add_argument("--impressions", type=int, default=d.n_impressions, help="number of impressions")
    parser.add_argument("--users", type=int, default=d.n_users, help="simulated users")
    parser.add_argument("--segments", type=int, default=d.n_segments,
                        help="observed user segments (shared colour/category affinities)")
    parser.add_argument("--days", type=int, default=d.n_days, help="days the impressions span")
    parser.add_argument("--base-ctr", type=float, default=d.base_ctr, help="target average click-through rate")
    parser.add_argument("--colour-strength", type=float, default=d.colour_strength,
                        help="spread (std) of the segments' colour affinities in the click logit")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        from catalog2vec.lakehouse import read_table, write_table
        from catalog2vec.schemas import bronze

        spark = get_spark("simulate_impressions", cfg.spark.master, cfg.spark.conf)
        params = SimulationParams(
            n_impressions=args.impressions, n_users=args.users, n_segments=args.segments, n_days=args.days,
            base_ctr=args.base_ctr, colour_strength=args.colour_strength, seed=args.seed,
        )
        pdf = simulate_spark(read_table(spark, cfg.lakehouse, bronze.CATALOG_ITEMS), params)
        write_table(spark, to_bronze(spark, pdf, cfg.run_id), bronze.IMPRESSIONS, cfg.lakehouse, mode="merge")
        print(
            f"[simulate_impressions] SYNTHETIC: {len(pdf)} impressions over {pdf['item_id'].nunique()} items, "
            f"{int(pdf['click'].sum())} clicks (CTR {pdf['click'].mean():.4f}) -> {cfg.lakehouse}/bronze/impressions "
            "(source='synthetic')"
        )
        return {"impressions": len(pdf), "clicks": int(pdf["click"].sum())}

    return run_job("simulate_impressions", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
