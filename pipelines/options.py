"""Options shared by every catalog2vec Beam pipeline.

Beam builds one argument parser from *every direct* ``PipelineOptions`` subclass imported in the
process, so two pipelines that each declared ``--config`` or ``--input`` could not be imported
together. Shared flags live here, once; each pipeline's own options subclass this class (an
indirect subclass is parsed only by ``view_as`` of that class, so their flags never collide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apache_beam.options.pipeline_options import PipelineOptions

from catalog2vec import names

if TYPE_CHECKING:
    from catalog2vec.config import Config


class Catalog2vecOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        # the flags every spark-submit job takes (jobs/_common.base_parser), with the same meaning
        parser.add_argument("--config", default=None, help="TOML run configuration (default conf/local.toml)")
        parser.add_argument("--lakehouse", default=None,
                            help="lakehouse root directory or URI (default from config: ./lakehouse)")
        parser.add_argument("--run-id", "--run_id", dest="run_id", default=None, type=names.arg_type("run_id"),
                            help="run identifier recorded as lineage (default: timestamp + random)")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override one config value, e.g. --set text.min_count=3 (repeatable)")

    def load_config(self) -> Config:
        """The run configuration: ``--config`` with every ``--set`` applied, ``--lakehouse`` and
        ``--run-id`` — exactly what a spark-submit job builds from the same flags."""
        from catalog2vec.config import load_config

        return load_config(self.config, list(self.overrides or []), lakehouse=self.lakehouse, run_id=self.run_id)
