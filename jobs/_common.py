"""Shared argument handling for the spark-submit entry points (thin: parse → library call).

Every job accepts ``--config FILE`` (default conf/local.toml), ``--lakehouse DIR``,
``--run-id ID`` and repeatable ``--set section.key=value`` overrides.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from catalog2vec.config import Config, ConfigError, load_config


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"spark-submit jobs/{prog}.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = parser.add_argument_group("common options")
    g.add_argument("--config", default=None, help="TOML run configuration (default: conf/local.toml)")
    g.add_argument("--lakehouse", default=None, help="lakehouse root directory or URI (default from config: ./lakehouse)")
    g.add_argument("--run-id", default=None, help="run identifier recorded as lineage (default: timestamp + random)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=2 (repeatable)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config, args.overrides, lakehouse=args.lakehouse, run_id=args.run_id)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from exc


def run_job(name: str, fn: Callable[[], Any]) -> int:
    """Run ``fn`` with logging set up; a user error becomes one clear line and exit code 2."""
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    t0 = time.time()
    try:
        fn()
    except (ValueError, FileNotFoundError) as exc:
        print(f"[{name}] error: {exc}", file=sys.stderr)
        return 2
    print(f"[{name}] done in {time.time() - t0:.1f}s")
    return 0
