"""Apache Beam version of build_vocab: the same input files → the same tokens and vocabulary,
computed with the same library functions (catalog2vec.text), written as Parquet.

Outputs under --output:
  vocab.parquet              vocab_version, token, index, count, doc_freq (identical to Spark's)
  catalog_tokens-*.parquet   item_id, tokens, n_raw_tokens, truncated, run_id
  quarantine-*.parquet       source, record, item_id, reason, detail, run_id (schemas.bronze.
                             ADHOC_QUARANTINE_COLUMNS; malformed_record / invalid_utf8 / duplicate_key
                             from the shared parser, missing_item_id, no_tokens)

example (DirectRunner):
  python pipelines/text_vocab.py --input ../shared/data/myntra_titles_44k.csv --format csv \\
      --id-column id --text-columns productDisplayName --output /tmp/beam_v --runner=DirectRunner
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

try:
    from pipelines.options import Catalog2vecOptions
except ImportError:  # run as a script: python pipelines/<name>.py
    from options import Catalog2vecOptions  # type: ignore[no-redef]

from catalog2vec.errors import InvalidInput
from catalog2vec.ingest import formats
from catalog2vec.quality import Reason
from catalog2vec.schemas import bronze
from catalog2vec.text.clean import CleanerSettings
from catalog2vec.text.columnar import clean_arrow_batch
from catalog2vec.text.options import parse_text_columns
from catalog2vec.text.vocab import finalize_vocab

FORMATS = formats.FORMATS


class TextVocabOptions(Catalog2vecOptions):
    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--input", required=True, help="input file or glob")
        parser.add_argument("--format", default="csv", choices=FORMATS, help="input format (json = JSON lines)")
        parser.add_argument("--id-column", "--id_column", dest="id_column", default="item_id")
        parser.add_argument(
            "--text-columns", "--text_columns", dest="text_columns", default=None,
            help="comma-separated text columns with optional :weight (default: text.fields of the config)",
        )
        parser.add_argument("--output", required=True, help="output directory")
        parser.add_argument("--vocab-size", "--vocab_size", dest="vocab_size", type=int, default=None)
        parser.add_argument("--min-count", "--min_count", dest="min_count", type=int, default=None)


class ParseRecords(beam.DoFn):
    """One matched file → ``(item_id, values)`` on the main output, rejects on ``rejected``.

    Parsing is :func:`catalog2vec.ingest.formats.iter_records` — the pure CSV / JSON-lines /
    Parquet reader the Spark ingest_catalog job runs on its executors — and the id rule is
    :func:`~catalog2vec.ingest.formats.keyed_values`, so a record Spark's ingest rejects is
    rejected here with the same reason. Every value is kept as text."""

    def __init__(self, fmt: str, id_column: str, fields: list[str], run_id: str) -> None:
        self.fmt, self.id_column, self.fields, self.run_id = fmt, id_column, fields, run_id
        self.read = Metrics.counter("text_vocab", "rows_read")
        self.rejected = Metrics.counter("text_vocab", "rows_rejected")

    def _reject(self, source: str, record: str, reason: str, detail: str) -> Any:
        """A parse or id reject: no item_id could be read."""
        self.rejected.inc()
        return beam.pvalue.TaggedOutput("rejected", quarantine_row(source, record, None, reason, detail, self.run_id))

    def process(self, readable: Any) -> Iterator[Any]:
        path = readable.metadata.path
        with readable.open() as fh:
            data = fh.read()
        checked = False
        for rec in formats.iter_records(data, self.fmt):
            self.read.inc()
            record = formats.raw_text(rec.raw)
            if rec.fields is None:
                reason = rec.reason.value if rec.reason is not None else Reason.MALFORMED_RECORD.value
                yield self._reject(path, record, reason, rec.detail or formats.MALFORMED_DETAIL)
                continue
            if not checked:
                missing = [c for c in (self.id_column, *self.fields) if c not in rec.fields]
                if missing:
                    raise InvalidInput(f"column(s) {missing} not in {path}; it has {sorted(rec.fields)}")
                checked = True
            keyed = formats.keyed_values(rec.fields, self.id_column, self.fields)
            if keyed is None:
                yield self._reject(path, record, Reason.MISSING_ITEM_ID.value,
                                   formats.MISSING_ITEM_ID_DETAIL.format(column=self.id_column))
                continue
            yield keyed


def quarantine_row(source: str, record: str, item_id: str | None, reason: str, detail: str | None,
                   run_id: str) -> dict[str, Any]:
    """One row of the ad-hoc quarantine Parquet (``schemas.bronze.ADHOC_QUARANTINE_COLUMNS``)."""
    return dict(zip(bronze.ADHOC_QUARANTINE_COLUMNS, (source, record, item_id, reason, detail, run_id), strict=True))


def pick_one(candidates: Any) -> tuple[str, tuple[str | None, ...]]:
    """Duplicate item_ids: keep the row whose texts joined by U+0001 sort first (Spark's rule)."""
    return min(candidates)


class SumPairs(beam.CombineFn):  # type: ignore[misc]
    """(count, doc_freq) sums."""

    def create_accumulator(self) -> tuple[int, int]:
        return (0, 0)

    def add_input(self, acc: tuple[int, int], x: tuple[int, int]) -> tuple[int, int]:
        return (acc[0] + x[0], acc[1] + x[1])

    def merge_accumulators(self, accs: Any) -> tuple[int, int]:
        c = d = 0
        for a, b in accs:
            c, d = c + a, d + b
        return (c, d)

    def extract_output(self, acc: tuple[int, int]) -> tuple[int, int]:
        return acc


@dataclass(frozen=True)
class CleanedItem:
    """One item's cleaning result as the pipeline carries it (from :func:`clean_arrow_batch`)."""

    tokens: list[str]
    n_raw_tokens: int
    truncated: bool
    counts: dict[str, int]  # weighted occurrences per distinct token, first-seen order


def _clean_batch(
    batch: list[tuple[str, tuple[str | None, ...]]], settings: CleanerSettings
) -> Iterator[tuple[str, CleanedItem]]:
    """A batch of (item_id, field texts) → cleaned items, through the same whole-batch Arrow
    cleaner as Spark's ``mapInArrow`` (:func:`catalog2vec.text.columnar.clean_arrow_batch`)."""
    import pyarrow as pa

    names = settings.field_names
    columns = {"item_id": pa.array([item_id for item_id, _ in batch], pa.string())}
    for i, name in enumerate(names):
        columns[name] = pa.array([values[i] for _, values in batch], pa.string())
    out = clean_arrow_batch(pa.RecordBatch.from_pydict(columns), settings).to_pydict()
    for i, item_id in enumerate(out["item_id"]):
        counts = dict(zip(out["uniq_tokens"][i], out["uniq_counts"][i], strict=True))
        yield item_id, CleanedItem(out["tokens"][i], out["n_raw_tokens"][i], out["truncated"][i], counts)


def _token_pairs(kv: tuple[str, CleanedItem]) -> Iterator[tuple[str, tuple[int, int]]]:
    for token, count in kv[1].counts.items():
        yield token, (count, 1)


def build_pipeline(p: beam.Pipeline, opts: TextVocabOptions) -> dict[str, Any]:
    cfg = opts.load_config()
    fields = parse_text_columns(opts.text_columns) if opts.text_columns else dict(cfg.text.fields)
    settings = CleanerSettings.from_config(cfg.text, fields)
    fingerprint = settings.fingerprint()
    k = int(opts.vocab_size if opts.vocab_size is not None else cfg.text.vocab_size)
    min_count = int(opts.min_count if opts.min_count is not None else cfg.text.min_count)
    out = opts.output.rstrip("/")
    run_id = cfg.run_id
    names = settings.field_names

    import pyarrow as pa

    from catalog2vec.schemas import silver

    parsed = (
        p
        | "MatchInput" >> fileio.MatchFiles(opts.input)
        | "ReadMatches" >> fileio.ReadMatches()
        | "ParseRecords" >> beam.ParDo(ParseRecords(opts.format, opts.id_column, names, run_id)).with_outputs("rejected", main="items")
    )
    items = (
        parsed.items
        | "KeyBySortKey" >> beam.Map(lambda kv: (kv[0], ("\u0001".join(v or "" for v in kv[1]), kv[1])))
        | "OneRowPerId" >> beam.CombinePerKey(pick_one)
        | "DropSortKey" >> beam.MapTuple(lambda item_id, pair: (item_id, pair[1]))
    )
    cleaned = (
        items
        | "BatchItems" >> beam.BatchElements(min_batch_size=64, max_batch_size=10000)
        | "CleanText" >> beam.FlatMap(_clean_batch, settings)
    )
    tokenised = cleaned | "HasTokens" >> beam.Filter(lambda kv: bool(kv[1].tokens))
    no_tokens = (
        cleaned
        | "NoTokens" >> beam.Filter(lambda kv: not kv[1].tokens)
        | "NoTokensRecord" >> beam.Map(
            lambda kv: quarantine_row(opts.input, json.dumps({"item_id": kv[0]}), kv[0], Reason.NO_TOKENS.value,
                                      f"raw tokens: {kv[1].n_raw_tokens}, none survived filtering", run_id)
        )
    )
    vocab = (
        tokenised
        | "TokenPairs" >> beam.FlatMap(_token_pairs)
        | "SumCounts" >> beam.CombinePerKey(SumPairs())
        | "MinCount" >> beam.Filter(lambda kv, mc: kv[1][0] >= mc, min_count)
        | "TopK" >> beam.combiners.Top.Of(k, key=lambda kv: (-kv[1][0], kv[0]), reverse=True)
        | "NumberVocab" >> beam.FlatMap(
            lambda top: [asdict(e) for e in finalize_vocab(((t, c, d) for t, (c, d) in top), k, min_count, fingerprint)]
        )
    )
    _ = vocab | "WriteVocab" >> beam.io.WriteToParquet(
        f"{out}/vocab", silver.VOCAB.arrow_schema(), file_name_suffix=".parquet", num_shards=1, shard_name_template=""
    )
    _ = (
        tokenised
        | "TokensRow" >> beam.MapTuple(
            lambda item_id, r: {"item_id": item_id, "tokens": r.tokens, "n_raw_tokens": r.n_raw_tokens,
                                "truncated": r.truncated, "run_id": run_id}
        )
        | "WriteTokens" >> beam.io.WriteToParquet(
            f"{out}/catalog_tokens", silver.CATALOG_TOKENS.arrow_schema(), file_name_suffix=".parquet"
        )
    )
    quarantine_fields = {f.name: f for f in bronze.QUARANTINE.arrow_schema()}
    quarantine_schema = pa.schema([quarantine_fields[c] for c in bronze.ADHOC_QUARANTINE_COLUMNS])
    rejects = (parsed.rejected, no_tokens) | "AllRejects" >> beam.Flatten()
    _ = rejects | "WriteQuarantine" >> beam.io.WriteToParquet(
        f"{out}/quarantine", quarantine_schema, file_name_suffix=".parquet"
    )
    return {"vocab": vocab, "tokens": tokenised, "rejects": rejects}


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> Any:
    """Build and run the pipeline; ``test_pipeline`` (a TestPipeline) replaces the default one."""
    opts = PipelineOptions(argv).view_as(TextVocabOptions)
    if opts.format not in FORMATS:
        raise InvalidInput(f"--format must be one of {FORMATS}")
    p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=PipelineOptions(argv))
    build_pipeline(p, opts)
    result = p.run()
    result.wait_until_finish()
    return result


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    run(sys.argv[1:])
