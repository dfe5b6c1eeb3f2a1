"""Train the weakly supervised image model with pyspark's TorchDistributor.

Reads silver/images + silver/item_labels + silver/vocab (the latest vocab_version unless
--vocab-version), trains train.arch (ResNet-50 / ResNet-18) with train.loss (softmax with negative
sampling, or bce), validates every epoch, checkpoints atomically and resumes automatically from the
latest checkpoint of the same model_version. train.num_processes / local_mode / use_gpu go to
TorchDistributor (gloo on CPU, NCCL with one GPU per task on a cluster).

Output: <lakehouse>/models/<model_version>/ with model.pt, vocab.parquet, model_card.json
(config, vocab_version, data counts, per-epoch validation metrics, wall time, images/s, code
version) and checkpoints/.

examples:
  spark-submit jobs/train.py --lakehouse lakehouse
  spark-submit jobs/train.py --lakehouse lakehouse --max-steps 20          # stop early (resumable)
  spark-submit jobs/train.py --config conf/cluster.toml --lakehouse s3://bucket/lh
"""

from __future__ import annotations

import json
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec.vision.train import add_train_arguments, cli_overrides, run_distributed


def get_args_parser():  # type: ignore[no-untyped-def]
    parser = base_parser("train", __doc__ or "")
    add_train_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
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
