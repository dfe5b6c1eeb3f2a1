"""Validate and normalise the product images of bronze/catalog_items into silver/images.

For each item's image_uri (literal local path or file:// URI, or s3:// etc. through catalog2vec.storage) the bytes are
read, checked with Pillow and normalised: EXIF orientation applied, CMYK / grayscale (8- and
16-bit) / palette / alpha converted to RGB (alpha on white), shorter side reduced to
images.short_side (default 256), re-encoded as JPEG (images.jpeg_quality). Rejected images go to
bronze/quarantine with a reason: image_missing, image_path_invalid (not a regular file, name too
long), image_fetch_failed (s3:// / http:// unreadable), image_too_large (over images.max_bytes),
image_empty, not_an_image, decompression_bomb (over images.max_pixels), image_truncated,
image_undecodable. Paths are literal (no glob); one bad image never fails the run. An image whose source sha256 is
unchanged since the last run is not reprocessed; re-running changes nothing.
Accounting printed: items = written + unchanged + quarantined.

example:
  spark-submit jobs/ingest_images.py --lakehouse lakehouse
  spark-submit jobs/ingest_images.py --lakehouse lakehouse --set images.short_side=128
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.ingest.images import ingest_images
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    return base_parser("ingest_images", __doc__ or "")


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        spark = get_spark("ingest_images", cfg.spark.master, cfg.spark.conf)
        counts = ingest_images(spark, cfg)
        print(f"[ingest_images] {counts}")
        print(f"[ingest_images] table: {cfg.lakehouse}/silver/images (quarantine: bronze/quarantine)")
        return counts

    return run_job("ingest_images", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
