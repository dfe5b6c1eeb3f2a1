"""The Spark GPU settings are checked before a GPU job starts (whole GPUs for TorchDistributor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog2vec.config import load_config
from catalog2vec.errors import InvalidInput
from catalog2vec.vision.gpu_resources import DISCOVERY, EXECUTOR_GPU, TASK_GPU, check_spark_gpu_conf

REPO = Path(__file__).resolve().parents[3]
BASE = {EXECUTOR_GPU: "1", DISCOVERY: "/opt/spark/getGpusResources.sh", TASK_GPU: "1"}


def test_cluster_toml_runs_training_and_embedding_on_gpus() -> None:
    assert TASK_GPU not in load_config(REPO / "conf" / "cluster.toml").spark.conf  # CPU jobs ask for no GPU
    cfg = load_config(REPO / "conf" / "cluster-gpu.toml")
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "400"  # the rest of cluster.toml
    conf = cfg.spark.conf
    assert conf[TASK_GPU] == "1" and conf[EXECUTOR_GPU] == "1" and conf[DISCOVERY].endswith("getGpusResources.sh")
    check_spark_gpu_conf(conf, "train", cfg.train.num_processes)
    check_spark_gpu_conf(conf, "embed")
    # the same check takes SparkConf.getAll()'s pairs
    check_spark_gpu_conf(list(conf.items()), "train", cfg.train.num_processes)


@pytest.mark.parametrize("amount", ["0.25", "0.5", "1.0", "1.5"])
def test_fractional_task_gpu_refused_for_training(amount: str) -> None:
    conf = {**BASE, EXECUTOR_GPU: "2", TASK_GPU: amount}
    with pytest.raises(InvalidInput, match="whole GPUs per process"):
        check_spark_gpu_conf(conf, "train", num_processes=8)


def test_fractions_that_divide_a_gpu_are_fine_for_embedding() -> None:
    for amount in ("0.5", "0.25", "1", "2"):
        check_spark_gpu_conf({**BASE, EXECUTOR_GPU: "2", TASK_GPU: amount}, "embed")
    with pytest.raises(InvalidInput, match="divide one GPU evenly"):
        check_spark_gpu_conf({**BASE, TASK_GPU: "0.3"}, "embed")
    with pytest.raises(InvalidInput, match="whole number"):
        check_spark_gpu_conf({**BASE, EXECUTOR_GPU: "4", TASK_GPU: "1.5"}, "embed")


def test_training_processes_must_fill_whole_tasks() -> None:
    conf = {**BASE, EXECUTOR_GPU: "4", TASK_GPU: "2"}
    check_spark_gpu_conf(conf, "train", num_processes=8)
    with pytest.raises(InvalidInput, match="multiple"):
        check_spark_gpu_conf(conf, "train", num_processes=3)


@pytest.mark.parametrize(("conf", "message"), [
    ({TASK_GPU: "1"}, EXECUTOR_GPU),
    ({EXECUTOR_GPU: "1", TASK_GPU: "1"}, "discoveryScript"),
    ({EXECUTOR_GPU: "1", DISCOVERY: "/x.sh"}, TASK_GPU),
    ({**BASE, TASK_GPU: "2"}, "exceeds"),
    ({**BASE, EXECUTOR_GPU: "0.5"}, "whole number"),
    ({**BASE, TASK_GPU: "one"}, "must be a number"),
    ({**BASE, TASK_GPU: "0"}, "> 0"),
])
def test_incomplete_or_impossible_settings_refused(conf: dict[str, str], message: str) -> None:
    for purpose in ("train", "embed"):
        with pytest.raises(InvalidInput, match=message):
            check_spark_gpu_conf(conf, purpose)


def test_vendor_instead_of_discovery_script_and_bad_purpose() -> None:
    check_spark_gpu_conf({EXECUTOR_GPU: "1", "spark.executor.resource.gpu.vendor": "nvidia.com", TASK_GPU: "1"},
                         "train")
    with pytest.raises(ValueError, match="purpose"):
        check_spark_gpu_conf(BASE, "serve")


def test_gpu_config_scales_batch_and_learning_rate_together() -> None:
    """cluster-gpu.toml: the linear scaling rule from cluster.toml's paper setting, with a warm-up."""
    base = load_config(REPO / "conf" / "cluster.toml").train
    gpu = load_config(REPO / "conf" / "cluster-gpu.toml").train
    assert (base.batch_size, base.lr) == (20, 0.1) and gpu.batch_size == 256
    assert gpu.lr == pytest.approx(base.lr * gpu.batch_size / base.batch_size)
    assert gpu.lr_schedule == "cosine" and 0 < gpu.warmup_epochs < gpu.epochs
    assert (gpu.num_processes, gpu.epochs, gpu.optimizer) == (base.num_processes, base.epochs, base.optimizer)
    # the schedule it gives: lr/100 at the first step, linear up to lr at the end of epoch 2, then down
    import torch

    from catalog2vec.vision.train import make_scheduler

    steps_per_epoch = 50
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=gpu.lr)
    sched = make_scheduler(gpu, opt, steps_per_epoch * gpu.epochs)
    lrs = []
    for _ in range(steps_per_epoch * 4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    warm = int(gpu.warmup_epochs * steps_per_epoch)
    assert lrs[0] == pytest.approx(gpu.lr / 100)
    assert lrs[warm // 2] == pytest.approx(gpu.lr * (0.01 + 0.99 * 0.5))
    assert lrs[warm] == pytest.approx(gpu.lr) and max(lrs) == pytest.approx(gpu.lr)
    assert lrs[-1] < gpu.lr and all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:], strict=False))
