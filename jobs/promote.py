"""Promote a trained candidate to champion only if it passes evaluation (the promotion gate).

Training publishes a candidate (models/<version>/, MLflow alias challenger). This job scores the
candidate and the current champion (the version models/LATEST names) on the same held-out items —
the test split of the run's catalog, at most evaluation.max_test_items, chosen by a hash of item_id —
from the models' weights: tag recall@3/5/10 of the tag head and retrieval precision@10 (same
category). The candidate passes when it scores >= champion + promotion.min_delta on
promotion.metric; with no champion yet, the first candidate passes.

Passed: models/LATEST and the MLflow champion alias (when train.mlflow) move to the candidate; the
*_latest views follow models/LATEST at the next register_tables. Rejected (promotion.fail_if_worse =
true): nothing moves, every model stage keeps resolving the previous champion, and the job exits 3
(the Airflow DAG marks promote skipped, alerts, and runs embed on the previous model). Either way the
decision is written to <lakehouse>/reports/<candidate>/promotion.json.

examples:
  spark-submit jobs/promote.py --lakehouse lakehouse                      # the newest candidate
  spark-submit jobs/promote.py --lakehouse lakehouse --candidate resnet18-bce-1a2b3c4d-5e6f7a8b
  spark-submit jobs/promote.py --lakehouse lakehouse --set promotion.min_delta=0.01
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import base_parser, config_from_args, run_job

from catalog2vec import models, names
from catalog2vec.evaluation import gate
from catalog2vec.spark import get_spark

NOT_PROMOTED_EXIT = 3  # the candidate was rejected by the gate (the DAG: skipped + alert, no retry)


def get_args_parser() -> argparse.ArgumentParser:
    parser = base_parser("promote", __doc__ or "")
    parser.add_argument("--candidate", default="newest", type=names.arg_type("model_version"),
                        help="candidate model version (default 'newest': the most recently trained one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = config_from_args(args)
    state: dict[str, bool] = {"promoted": False}

    def work() -> object:
        candidate = models.newest_version(cfg.lakehouse) if args.candidate == "newest" else args.candidate
        models.resolve(cfg.lakehouse, candidate)  # a published version, or one clear line
        decision = gate.decide(get_spark("promote", cfg.spark.master, cfg.spark.conf), cfg, candidate)
        for version, scores in decision.scores.items():
            role = "candidate" if version == candidate else "champion"
            shown = ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if v is not None)
            print(f"[promote] {role:>9} {version}: {shown} ({decision.heldout_items} held-out items)")
        path = gate.write_decision(cfg, decision)
        result: dict[str, object] = {"decision": decision.to_dict(), "record": path}
        if decision.promoted:
            result["moved"] = gate.promote(cfg, candidate)
            print(f"[promote] PROMOTED {candidate}: {decision.reason}")
        else:
            bar = "!" * 100
            print(f"{bar}\n[promote] NOT PROMOTED {candidate}: {decision.reason}; champion stays "
                  f"{decision.champion}\n{bar}", file=sys.stderr)
        print(f"[promote] decision: {path}")
        state["promoted"] = decision.promoted
        return json.loads(json.dumps(result, default=str))

    rc = run_job("promote", work, cfg)
    return NOT_PROMOTED_EXIT if rc == 0 and not state["promoted"] else rc


if __name__ == "__main__":
    sys.exit(main())
