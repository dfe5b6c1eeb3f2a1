"""Register every lakehouse table in a metastore as an EXTERNAL Delta table, with table and
column comments from schemas/, under the databases catalog2vec_bronze, catalog2vec_silver and
catalog2vec_gold; plus views <gold table>_latest on the model version named by models/LATEST.

The metastore comes from [metastore] of the config: kind = "embedded" (default, one machine) is a
Hive metastore on Derby under metastore.dir (default <lakehouse>/_metastore); kind = "session" uses
the session's own (cluster Hive metastore, AWS Glue, Unity Catalog with metastore.catalog). Another
session sees the tables once it runs on the same metastore (the job prints its Spark conf).
Idempotent: re-running refreshes comments and moves the _latest views to the current LATEST.

example:
  spark-submit jobs/register_tables.py --lakehouse lakehouse
  spark-sql --conf spark.sql.catalogImplementation=hive \\
    --conf spark.hadoop.javax.jdo.option.ConnectionURL='jdbc:derby:;databaseName=lakehouse/_metastore/metastore_db' \\
    -e 'SELECT count(*) FROM catalog2vec_gold.item_embeddings_latest'
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import names
from catalog2vec.lakehouse import metastore
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("register_tables", __doc__ or "")
    parser.add_argument("--model-version", default="", type=names.arg_type("model_version", optional=True),
                        help="model version of the _latest views (default: the one models/LATEST names)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> None:
        conf = metastore.spark_conf(cfg)
        spark = get_spark("register_tables", cfg.spark.master, {**conf, **cfg.spark.conf})
        metastore.check_session(spark, cfg)
        reg = metastore.register_tables(
            spark, cfg.lakehouse, prefix=cfg.metastore.database_prefix, catalog=cfg.metastore.catalog,
            model_version=args.model_version or None,
        )
        for table, name in sorted(reg.tables.items()):
            print(f"[register_tables] {table} -> {name}")
        for name in sorted(reg.views.values()):
            print(f"[register_tables] view {name} (model_version {reg.latest_model_version})")
        print(f"[register_tables] tables={len(reg.tables)} views={len(reg.views)} comments_updated={reg.comments_updated}")
        if conf:
            flags = " ".join(f"--conf {k}='{v}'" for k, v in conf.items())
            print(f"[register_tables] other sessions: spark-sql {flags} -e 'SHOW TABLES IN {cfg.metastore.database_prefix}_gold'")

    return run_job("register_tables", work)


if __name__ == "__main__":
    sys.exit(main())
