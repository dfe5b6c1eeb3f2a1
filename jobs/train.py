"""Train the weakly supervised image model with pyspark's TorchDistributor.

Reads silver/images + silver/item_labels + silver/vocab (the latest vocab_version unless
--vocab-version), trains train.arch (ResNet-50 / ResNet-18) with train.loss (softmax with negative
sampling, or bce), validates every epoch, checkpoints atomically and resumes automatically from the
latest checkpoint of the same model_version. train.num_processes / local_mode / use_gpu go to
TorchDistributor (gloo on CPU, NCCL with one GPU per task on a cluster).

--no-spark trains in this process instead (no Spark, no TorchDistributor; under torchrun each rank
runs it): it prints the result as one JSON line and writes no _runs/ record.

Output: <lakehouse>/models/<model_version>/ with model.pt, vocab.parquet, model_card.json
(config, vocab_version, data counts, per-epoch validation metrics, wall time, images/s, code
version) and checkpoints/.

examples:
  spark-submit jobs/train.py --lakehouse lakehouse
  spark-submit jobs/train.py --lakehouse lakehouse --max-steps 20          # stop early (resumable)
  spark-submit jobs/train.py --config conf/cluster.toml --lakehouse s3://bucket/lh
  python jobs/train.py --no-spark --lakehouse lakehouse                   # no Spark
  torchrun --nproc_per_node 2 jobs/train.py --no-spark --lakehouse lakehouse
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import names
from catalog2vec.config import load_config
from catalog2vec.vision.train import run_distributed, run_local


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("train", __doc__ or "")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (0 = no cap)")
    parser.add_argument("--vocab-version", default=None, type=names.arg_type("vocab_version"), help="train on this vocab_version (default: the latest)")
    parser.add_argument("--model-version", default=None, type=names.arg_type("model_version"), help="output models/<id>/ (default: derived from config)")
    parser.add_argument("--init-weights", default=None, help="torchvision-format ResNet state dict to start from")
    parser.add_argument("--no-spark", action="store_true",
                        help="train in this process (or as one torchrun rank), without Spark / TorchDistributor")
    return parser


def cli_overrides(args: argparse.Namespace) -> list[str]:
    """``--max-steps`` etc. as ``section.key=value`` overrides (strings TOML-quoted)."""
    extra = list(args.overrides)
    if args.max_steps is not None:
        extra.append(f"train.max_steps={int(args.max_steps)}")
    for flag, key in (("vocab_version", "vocab_version"), ("model_version", "model_version"),
                      ("init_weights", "init_weights")):
        val = getattr(args, flag)
        if val:
            extra.append(f"train.{key}={json.dumps(val)}")
    return extra


def train_without_spark(args: argparse.Namespace) -> int:
    """--no-spark: :func:`run_local`; an invalid config or a user error is one line, exit 2."""
    try:
        cfg = load_config(args.config, cli_overrides(args), lakehouse=args.lakehouse, run_id=args.run_id)
        result = run_local(cfg)
    except (ValueError, FileNotFoundError) as exc:
        print(f"[train] error: {exc}", file=sys.stderr)
        return 2
    if result is not None and "user_error" in result:
        print(f"[train] error: {result['user_error']['message']}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps({k: result[k] for k in ("model_version", "model_dir", "steps", "complete")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.no_spark:
        return train_without_spark(args)
    overrides = cli_overrides(args)
    args.overrides = overrides
    cfg = config_from_args(args)  # validates the config (and fixes run_id) before launching workers

    def work() -> object:
        from catalog2vec.spark import get_spark

        result = run_distributed(get_spark("train", cfg.spark.master, cfg.spark.conf), cfg)
        print(f"[train] model_version={result['model_version']} steps={result['steps']} "
              f"complete={result['complete']}")
        print(f"[train] model: {result['model_dir']} (model_card.json)")
        print("[train] test metrics: " + json.dumps(result["metrics"].get("test", {})))
        return result

    return run_job("train", work, cfg)


if __name__ == "__main__":
    sys.exit(main())
