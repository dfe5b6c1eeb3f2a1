"""Ingest an impression log (CSV / JSON lines / Parquet) into bronze/impressions.

The mapping names the log's columns for impression_id, ts, item_id and click (columns already
named so need no mapping); every other column becomes a categorical feature. Rejected rows go to
bronze/quarantine (malformed_record, missing_label, invalid_value). Logs without a timestamp get
a deterministic derived ts (weekday/hour + row order; see catalog2vec.ctr.impressions).
Re-ingesting the same file changes nothing (MERGE on impression_id).

example (real iPinYou RTB impressions):
  spark-submit jobs/ingest_impressions.py --input ../shared/data/ipinyou_train.csv --format csv \\
      --lakehouse lakehouse --source ipinyou
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.ctr.impressions import ingest_impressions, parse_mapping
from catalog2vec.ingest.catalog import FORMATS, IngestError
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("ingest_impressions", __doc__ or "")
    parser.add_argument("--input", required=True, help="input file, directory or glob")
    parser.add_argument("--format", required=True, choices=FORMATS, help="input format (json = JSON lines)")
    parser.add_argument(
        "--mapping", default=None, help="source=canonical pairs (canonical: impression_id, ts, item_id, click)"
    )
    parser.add_argument("--source", default=None, help="log name recorded per row (default: input file name)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)
    try:
        mapping = parse_mapping(args.mapping)
    except IngestError as exc:
        print(f"[ingest_impressions] error: {exc}", file=sys.stderr)
        return 2

    def work() -> object:
        spark = get_spark("ingest_impressions", cfg.spark.master, cfg.spark.conf)
        counts = ingest_impressions(spark, cfg, args.input, args.format, mapping, args.source)
        print(f"[ingest_impressions] {counts}")
        print(f"[ingest_impressions] table: {cfg.lakehouse}/bronze/impressions (quarantine: bronze/quarantine)")
        return counts

    return run_job("ingest_impressions", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
