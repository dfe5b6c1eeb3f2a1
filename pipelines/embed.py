"""Bulk embedding on Apache Beam: an export of silver/images (Parquet) → RunInference → Parquet staging.

The same model directory and the same batch function as the Spark job (catalog2vec.embed.core):
``KeyedModelHandler`` around :class:`catalog2vec.embed.beam_handler.JpegModelHandler`, which takes
the raw JPEG bytes and decodes each RunInference batch in one call on the model's device (nvJPEG on
a GPU worker; the batched input path of catalog2vec.vision.batch_input), like the Spark UDF;
undecodable images come back with ``ok = 0``. The staged rows are merged into the gold tables with
``spark-submit jobs/embed.py --from-staging STAGING``.

examples:
  # export silver/images without a JVM (delta-rs), run on the DirectRunner, merge with Spark
  python -m pipelines.embed --lakehouse lakehouse --model-version latest --export-images \\
      --input /tmp/images_export --staging /tmp/embed_staging --runner=DirectRunner
  spark-submit jobs/embed.py --lakehouse lakehouse --model-version latest --from-staging /tmp/embed_staging
  # Dataflow: --runner=DataflowRunner --project P --region R --temp_location gs://… (GPU workers:
  # --dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver)
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from catalog2vec import names
from catalog2vec.embed.beam_handler import JpegModelHandler

try:
    from pipelines.options import Catalog2vecOptions
except ImportError:  # run as a script: python pipelines/<name>.py
    from options import Catalog2vecOptions  # type: ignore[no-redef]

log = logging.getLogger("pipelines.embed")


class EmbedOptions(Catalog2vecOptions):
    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--model-version", dest="model_version", default="latest",
                            type=names.arg_type("model_version", model_ref=True),
                            help="model directory name under <lakehouse>/models/ or 'latest'")
        parser.add_argument("--input", required=True,
                            help="Parquet export of silver/images (a directory, file or glob)")
        parser.add_argument("--staging", required=True, help="output directory for the staged Parquet results")
        parser.add_argument("--export-images", dest="export_images", action="store_true",
                            help="first export <lakehouse>/silver/images to --input (delta-rs, no JVM)")
        parser.add_argument("--batch-size", dest="batch_size", type=int, default=0,
                            help="RunInference batch size (default: embed.batch_size)")
        parser.add_argument("--top-n", dest="top_n", type=int, default=0, help="tags per item (default: embed.top_n)")
        parser.add_argument("--device", default="", help="auto | cpu | cuda (default: embed.device)")
        parser.add_argument("--full-probabilities", dest="full_probabilities", action="store_true",
                            help="also stage the full probability vector")


def staging_schema(full_probabilities: bool) -> Any:
    import pyarrow as pa

    fields = [
        ("item_id", pa.string()),
        ("sha256", pa.string()),
        ("model_version", pa.string()),
        ("ok", pa.int32()),
        ("embedding", pa.list_(pa.float32())),
        ("norm", pa.float32()),
        ("tag_index", pa.list_(pa.int32())),
        ("tag_probability", pa.list_(pa.float32())),
    ]
    if full_probabilities:
        fields.append(("probabilities", pa.list_(pa.float32())))
    return pa.schema(fields)


def export_images(lakehouse: str, out_dir: str) -> int:
    """Write ``silver/images`` (item_id, sha256, image) as Parquet files under ``out_dir`` (delta-rs)."""
    import shutil
    from pathlib import Path

    import pyarrow.dataset as ds

    from catalog2vec.lakehouse import read_arrow
    from catalog2vec.schemas import silver

    table = read_arrow(lakehouse, silver.IMAGES, columns=["item_id", "sha256", "image"])
    if Path(out_dir).exists():
        shutil.rmtree(out_dir)
    ds.write_dataset(table, out_dir, format="parquet", max_rows_per_file=50_000, max_rows_per_group=1024)
    return int(table.num_rows)


def _input_pattern(path: str) -> str:
    import os

    return os.path.join(path, "*.parquet") if os.path.isdir(path) else path


def run(argv: list[str] | None = None, test_pipeline: Any = None) -> Any:
    """Build and run the pipeline; returns the PipelineResult (or None with ``test_pipeline``, which
    the caller runs, e.g. as a ``with TestPipeline() as p`` block)."""
    from catalog2vec import models
    from catalog2vec.embed.job import open_model
    from catalog2vec.vision import model_dir

    options = PipelineOptions(argv)
    opts = options.view_as(EmbedOptions)
    cfg = opts.load_config()
    lakehouse = cfg.lakehouse  # --lakehouse, else the config's (holds models/<version>/)
    version = models.resolve(lakehouse, opts.model_version)
    open_model(lakehouse, version)  # fails before any work on a bad model
    path = model_dir(lakehouse, version)
    batch_size = int(opts.batch_size or cfg.embed.batch_size)
    top_n = int(opts.top_n or cfg.embed.top_n)
    device = opts.device or cfg.embed.device
    full_probs = bool(opts.full_probabilities or cfg.embed.full_probabilities)
    if opts.export_images:
        n = export_images(lakehouse, opts.input)
        log.info("exported %d silver/images rows to %s", n, opts.input)

    handler = KeyedModelHandler(
        JpegModelHandler(path, top_n, device=device, full_probabilities=full_probs, min_batch_size=1,
                         max_batch_size=batch_size)
    )

    def keyed(row: dict[str, Any]) -> tuple[tuple[str, str], Any]:
        return (str(row["item_id"]), str(row["sha256"])), row.get("image")

    def to_row(item: tuple[tuple[str, str], PredictionResult]) -> dict[str, Any]:
        (item_id, sha), result = item
        return {"item_id": item_id, "sha256": sha, "model_version": version, **result.inference}

    p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
    rows = p | "ReadImages" >> beam.io.ReadFromParquet(_input_pattern(opts.input),
                                                       columns=["item_id", "sha256", "image"])
    (
        rows
        | "KeyBytes" >> beam.Map(keyed)
        | "RunInference" >> RunInference(handler)
        | "ToRow" >> beam.Map(to_row)
        | "WriteStaging" >> beam.io.WriteToParquet(
            f"{opts.staging.rstrip('/')}/part", staging_schema(full_probs), file_name_suffix=".parquet"
        )
    )
    if test_pipeline is not None:
        return None
    result = p.run()
    result.wait_until_finish()
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[pipelines.embed] %(asctime)s %(levelname)s %(message)s")
    run(sys.argv[1:])
