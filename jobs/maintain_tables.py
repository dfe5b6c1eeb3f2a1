"""Delta upkeep of every lakehouse table: OPTIMIZE (compaction; Z-order where schemas/ declares
zorder_by), then VACUUM with the table's declared delta.deletedFileRetentionDuration.

Scheduled weekly by the DAG (it runs in the daily DAG with --every-days 7: a table maintained less
than 7 days ago is skipped). Table content never changes, so re-runs are safe. --repartition
rewrites, once, a table whose partitioning differs from its declaration (a table created before
partition_by was declared).

example:
  spark-submit jobs/maintain_tables.py --lakehouse lakehouse
  spark-submit jobs/maintain_tables.py --lakehouse lakehouse --tables gold.item_tags,silver.images --no-vacuum
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.lakehouse.maintenance import maintain_tables
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("maintain_tables", __doc__ or "")
    parser.add_argument("--tables", default="", help="comma-separated layer.table names (default: every declared table)")
    parser.add_argument("--every-days", type=float, default=0.0,
                        help="skip a table whose last OPTIMIZE/VACUUM is younger than this (default 0: always)")
    parser.add_argument("--no-optimize", action="store_true", help="skip OPTIMIZE")
    parser.add_argument("--no-zorder", action="store_true", help="plain compaction even where zorder_by is declared")
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM")
    parser.add_argument("--repartition", action="store_true",
                        help="rewrite tables whose partitioning differs from schemas/ (one full rewrite each)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> None:
        from catalog2vec.schemas import get

        try:
            specs = [get(n.strip()) for n in args.tables.split(",") if n.strip()] if args.tables else None
        except KeyError as exc:  # an unknown table name is a user error: one line, exit 2
            raise ValueError(exc.args[0]) from None
        spark = get_spark("maintain_tables", cfg.spark.master, cfg.spark.conf)
        results = maintain_tables(
            spark, cfg.lakehouse, specs,
            optimize=not args.no_optimize, zorder=not args.no_zorder, vacuum=not args.no_vacuum,
            repartition=args.repartition, min_interval_days=args.every_days,
        )
        for r in results:
            if r.skipped != "no table":
                print(f"[maintain_tables] {r.line()}")
        done = [r for r in results if not r.skipped]
        print(f"[maintain_tables] tables={len(done)} compacted_files={sum(r.files_compacted for r in done)} "
              f"vacuumed_files={sum(r.vacuumed_files for r in done)}")

    return run_job("maintain_tables", work)


if __name__ == "__main__":
    sys.exit(main())
