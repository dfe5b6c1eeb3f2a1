"""Weak labels: each item's vocabulary words as label indices, with a deterministic split.

Reads silver/catalog_tokens and silver/vocab (the version in <lakehouse>/vocab/CURRENT, written by
the last build_vocab, unless --vocab-version is given) and writes silver/item_labels
(vocab_version, item_id, labels = sorted distinct indices, split = train|val|test from a salted
SHA-256 of item_id with the labels.train/val/test ratios), replacing that version's rows.
Items with no vocabulary word go to bronze/quarantine (reason no_vocab_words).

example:
  spark-submit jobs/build_labels.py --lakehouse lakehouse [--vocab-version v0123456789abcdef]
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("build_labels", __doc__ or "")
    parser.add_argument(
        "--vocab-version", default=None, help="vocabulary to label with (default: <lakehouse>/vocab/CURRENT)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        from catalog2vec.text.labels_job import build_labels

        spark = get_spark("build_labels", cfg.spark.master, cfg.spark.conf)
        version, counts = build_labels(spark, cfg, args.vocab_version)
        print(
            f"[build_labels] vocab_version={version} items={counts.read} labelled={counts.labelled} "
            f"quarantined={counts.quarantined} (no_vocab_words) splits={dict(sorted(counts.splits.items()))}"
        )
        print(f"[build_labels] table: {cfg.lakehouse}/silver/item_labels")
        return {"vocab_version": version, "counts": counts}

    return run_job("build_labels", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
