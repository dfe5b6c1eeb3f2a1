"""Options shared by every catalog2vec Beam pipeline.

Beam builds one argument parser from *every direct* ``PipelineOptions`` subclass imported in the
process, so two pipelines that each declared ``--config`` or ``--input`` could not be imported
together. Shared flags live here, once; each pipeline's own options subclass this class (an
indirect subclass is parsed only by ``view_as`` of that class, so their flags never collide).
"""

from __future__ import annotations

from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions


class Catalog2vecOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--config", default=None, help="TOML run configuration (default conf/local.toml)")
