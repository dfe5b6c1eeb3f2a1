"""Shared argument handling for the spark-submit entry points (thin: parse → library call).

Every job accepts ``--config FILE`` (default conf/local.toml), ``--lakehouse DIR``,
``--run-id ID`` and repeatable ``--set section.key=value`` overrides.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from catalog2vec import names
from catalog2vec.config import Config, ConfigError, load_config
from catalog2vec.lakehouse.io import retry_counts
from catalog2vec.redact import redact, redact_text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` keeps the module docstring's layout and shows each option's default, when it has
    one the help text does not already state (a default of None means "from the config")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        d = action.default
        if (d is None or d is False or d is argparse.SUPPRESS or d == [] or action.required
                or "default" in text.lower()):
            return action.help
        return f"{text} (default: %(default)s)"


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"spark-submit jobs/{prog}.py",
        description=description,
        formatter_class=HelpFormatter,
    )
    g = parser.add_argument_group("common options")
    g.add_argument("--config", default=None, help="TOML run configuration (default: conf/local.toml)")
    g.add_argument("--lakehouse", default=None, help="lakehouse root directory or URI (default from config: ./lakehouse)")
    g.add_argument("--run-id", default=None, type=names.arg_type("run_id"), help="run identifier recorded as lineage (default: timestamp + random)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=2 (repeatable)",
    )
    return parser


def model_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """:func:`base_parser` plus ``--model-version`` (default ``latest``) for jobs that read one
    trained model's embeddings."""
    parser = base_parser(prog, description)
    parser.add_argument("--model-version", default="latest", type=names.arg_type("model_version", model_ref=True), help="model version (default: newest trained model)")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config, args.overrides, lakehouse=args.lakehouse, run_id=args.run_id)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _jsonable(result: Any) -> Any:
    if result is None:
        return None
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, (tuple, list)):
        return [_jsonable(r) for r in result]
    if isinstance(result, dict):
        return {str(k): _jsonable(v) for k, v in result.items()}
    return result


def write_run_record(lakehouse: str, run_id: str, job: str, record: dict[str, Any]) -> str | None:
    """``<lakehouse>/_runs/<run_id>/<job>.json`` through the storage layer; a failure to write the
    record is logged, never raised over the job's own outcome."""
    from catalog2vec import layout, storage

    path = layout.run_record(lakehouse, run_id, job)
    try:
        return storage.write_json(path, record)
    except Exception as exc:
        logging.getLogger(name=job).warning("could not write the run record %s: %s", path, exc)
        return None


def _s3a_retries(root: str | None) -> dict[str, int]:
    """S3A's retry counters now (never fails the job: the record is best effort)."""
    from catalog2vec import storage

    try:
        return storage.s3a_retry_counts(root)
    except Exception:
        return {}


def _spark_stages() -> set[tuple[int, int]] | None:
    """The active Spark session's known stage attempts (None without a session, or if unreadable)."""
    try:
        from pyspark.sql import SparkSession

        from catalog2vec.spark import stage_attempts

        spark = SparkSession.getActiveSession()
        return None if spark is None else stage_attempts(spark)
    except Exception:
        return None


def _spark_failures(before: set[tuple[int, int]] | None) -> dict[str, int]:
    """Spark task failures per cause and stage retries since ``before`` (best effort, never fails)."""
    try:
        from pyspark.sql import SparkSession

        from catalog2vec.spark import task_failures

        return task_failures(SparkSession.getActiveSession(), before or set())
    except Exception:
        return {}


def _since(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}


def run_job(name: str, fn: Callable[[], Any], cfg: Config | None = None, lakehouse: str | None = "") -> int:
    """Run ``fn`` with logging set up and return the exit code.

    * The lakehouse (``cfg.lakehouse``, or ``lakehouse``; ``None`` = this run writes none, e.g.
      ad-hoc mode) is checked writable first: a file or read-only root is one clear error before
      any input is read.
    * A :class:`catalog2vec.errors.UserError` becomes one line on stderr and exit 2; any other
      exception keeps its traceback (exit 1).
    * Every run leaves ``<lakehouse>/_runs/<run_id>/<job>.json``: status, timings, what ``fn``
      returned (its counts), the quarantine reasons it counted and the error, if any.
    """
    from catalog2vec import layout, quality, storage
    from catalog2vec.errors import UserError

    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    root = (cfg.lakehouse if cfg is not None else None) if lakehouse == "" else lakehouse
    run_id = cfg.run_id if cfg is not None else None
    t0 = time.time()
    started = datetime.now(UTC).isoformat()
    quality.reason_counts(reset=True)
    retry_counts(reset=True)
    storage.retry_counts(reset=True)
    s3a_before = _s3a_retries(root)
    stages_before = _spark_stages()
    record: dict[str, Any] = {"job": name, "run_id": run_id, "lakehouse": root, "started_at": started}
    rc, result = 0, None
    try:
        if root is not None:
            storage.check_writable(root, layout.runs_dir(root))
        result = fn()
    except UserError as exc:
        print(f"[{name}] error: {redact_text(str(exc))}", file=sys.stderr)
        record.update(status="failed", error={"type": type(exc).__name__, "message": str(exc)})
        rc = 2
    except BaseException as exc:
        record.update(status="failed", error={"type": type(exc).__name__, "message": str(exc)[:2000]})
        rc = 1
        raise
    else:
        record["status"] = "succeeded"
        print(f"[{name}] done in {time.time() - t0:.1f}s")
    finally:
        if root is not None and run_id is not None and not (rc == 2 and _unwritable(root)):
            record.update(
                finished_at=datetime.now(UTC).isoformat(),
                wall_s=round(time.time() - t0, 3),
                exit_code=rc,
                counts=_jsonable(result),
                reasons=quality.reason_counts(),
                retries={**retry_counts(), **storage.retry_counts(), **_since(_s3a_retries(root), s3a_before),
                         **_spark_failures(stages_before)},
            )
            write_run_record(root, run_id, name, redact(record))  # no secret in a file
    return rc


def _unwritable(root: str) -> bool:
    from catalog2vec import layout, storage

    try:
        storage.check_writable(root, layout.runs_dir(root))
    except storage.StorageError:
        return True
    return False
