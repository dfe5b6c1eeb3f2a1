"""Ingest a crawled catalog (CSV / JSON lines / Parquet) into bronze/catalog_items.

Canonical columns: item_id, title, description, category, brand, color, gender, image_uri, url,
source, crawled_at; unmapped source columns are kept in the `extra` map. Rows are deduplicated
on item_id (latest crawled_at wins) and MERGEd, so re-ingesting the same file changes nothing.
Every record is parsed on its own (strict JSON objects, RFC 4180 CSV that resumes on the next
line after a broken quote, Parquet as text); every rejected record goes to bronze/quarantine with
its raw bytes and a reason: malformed_record, invalid_utf8, duplicate_key, missing_item_id,
invalid_id, field_too_large, invalid_timestamp, image_path_invalid, no_text. Ids are data, not
paths: templated image paths are escaped, never globbed, and cannot leave their directory; a
local image_uri must lie inside the input's directory or ingest.image_roots. A lakehouse that is
a file or read-only, no input file, or no readable record at all is one error line (exit 2).

example:
  spark-submit jobs/ingest_catalog.py --input examples/data/styles.csv --format csv \\
      --lakehouse lakehouse --source myntra_sample \\
      --mapping id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender \\
      --image-template 'images/{item_id}.jpg'
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.ingest.catalog import FORMATS, IngestError, ingest_catalog, parse_mapping
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("ingest_catalog", __doc__ or "")
    parser.add_argument("--input", required=True, help="input file, directory or glob (local path or URI)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="input format (json = JSON lines)")
    parser.add_argument(
        "--mapping",
        default=None,
        help="source=canonical column pairs, comma separated, e.g. id=item_id,productDisplayName=title",
    )
    parser.add_argument("--source", default=None, help="name of this crawl/feed (default: input file name)")
    parser.add_argument(
        "--image-template",
        default=None,
        help="derive image_uri from other fields, e.g. 'images/{item_id}.jpg'; relative templates "
        "resolve against the input's directory",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)
    try:
        mapping = parse_mapping(args.mapping)
    except IngestError as exc:
        print(f"[ingest_catalog] error: {exc}", file=sys.stderr)
        return 2

    def work() -> object:
        spark = get_spark("ingest_catalog", cfg.spark.master, cfg.spark.conf)
        counts = ingest_catalog(spark, cfg, args.input, args.format, mapping, args.source, args.image_template)
        print(f"[ingest_catalog] {counts}")
        print(f"[ingest_catalog] table: {cfg.lakehouse}/bronze/catalog_items (quarantine: bronze/quarantine)")
        return counts

    return run_job("ingest_catalog", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
