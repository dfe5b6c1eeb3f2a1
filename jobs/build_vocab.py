"""Build the visual vocabulary from catalog text: clean tokens per item and the top-K words.

Lakehouse mode (default) reads bronze/catalog_items and writes
  silver/catalog_tokens   item_id, tokens, n_raw_tokens, truncated, run_id   (MERGE on item_id)
  silver/vocab            vocab_version, token, index, count, doc_freq       (replaceWhere on the version)
  <lakehouse>/vocab/<vocab_version>/vocab.parquet (+ manifest.json)          plain Parquet copy
  <lakehouse>/vocab/CURRENT                                                  the version build_labels uses
Items whose text cleans down to nothing go to bronze/quarantine (reason no_tokens).

Ad-hoc mode (--input … --output DIR, no lakehouse at all) writes plain Parquet:
  DIR/vocab.parquet, DIR/manifest.json, DIR/catalog_tokens/, DIR/quarantine/ (if any rejects).

Cleaning (catalog2vec.text): NFKC, HTML unescaped and stripped, lower-case, NLTK RegexpTokenizer
keeping t-shirt whole, minus NLTK English stop words, sizes/units, marketing words, shop names and
non-alphabetic tokens. Top-K by count (field weights applied), ties by token; vocab_version is a
content hash (same input and settings -> same version).

examples:
  spark-submit jobs/build_vocab.py --lakehouse lakehouse --vocab-size 30000 --min-count 2
  spark-submit jobs/build_vocab.py --input ../shared/data/myntra_titles_44k.csv --format csv \\
      --id-column id --text-columns productDisplayName --output /tmp/v
"""

from __future__ import annotations

import argparse
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.errors import InvalidInput
from catalog2vec.ingest.catalog import FORMATS
from catalog2vec.spark import get_spark


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("build_vocab", __doc__ or "")
    parser.add_argument("--vocab-size", type=int, default=None, help="K, the number of words kept (text.vocab_size)")
    parser.add_argument("--min-count", type=int, default=None, help="drop words seen fewer times (text.min_count)")
    g = parser.add_argument_group("ad-hoc mode (no lakehouse)")
    g.add_argument("--input", default=None, help="input file, directory or glob")
    g.add_argument("--format", default="csv", choices=FORMATS, help="input format (json = JSON lines)")
    g.add_argument("--id-column", default="item_id", help="column holding the item id")
    g.add_argument(
        "--text-columns",
        default=None,
        help="comma-separated text columns, optional :weight, e.g. title,description:2 "
        "(default: text.fields of the config; in lakehouse mode: bronze columns)",
    )
    g.add_argument("--output", default=None, help="output directory for the Parquet files")
    parser.add_argument("--no-tokens", action="store_true", help="skip writing catalog_tokens (vocabulary only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)

    def work() -> object:
        from catalog2vec.text.options import parse_text_columns
        from catalog2vec.text.vocab_job import build_vocab

        if (args.input is None) != (args.output is None):
            raise InvalidInput("ad-hoc mode needs both --input and --output")
        fields = parse_text_columns(args.text_columns) if args.text_columns else None
        spark = get_spark("build_vocab", cfg.spark.master, cfg.spark.conf)
        res = build_vocab(
            spark,
            cfg,
            input_path=args.input,
            fmt=args.format,
            id_column=args.id_column,
            text_columns=fields,
            output=args.output,
            vocab_size=args.vocab_size,
            min_count=args.min_count,
            write_tokens=not args.no_tokens,
        )
        c = res.counts
        print(
            f"[build_vocab] vocab_version={res.version} words={len(res.vocab)} items read={c.read} "
            f"tokenised={c.tokenised} quarantined={c.quarantined} duplicates={c.duplicates} truncated={c.truncated}"
        )
        if res.reasons:
            print(f"[build_vocab] quarantine reasons: {res.reasons}")
        top = ", ".join(f"{e.token}({e.count})" for e in res.vocab[: cfg.text.top_k_log])
        print(f"[build_vocab] top {min(cfg.text.top_k_log, len(res.vocab))}: {top}")
        for name, path in res.paths.items():
            print(f"[build_vocab] {name}: {path}")
        return {"vocab_version": res.version, "words": len(res.vocab), "counts": res.counts, "reasons": res.reasons}

    return run_job("build_vocab", work, cfg, lakehouse=None if args.output else cfg.lakehouse)


if __name__ == "__main__":
    sys.exit(main())
