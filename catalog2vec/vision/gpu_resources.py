"""Fail-fast checks of the Spark GPU resource settings before a GPU job starts.

TorchDistributor gives every training process whole GPUs: it reads
``spark.task.resource.gpu.amount`` with ``int()`` and needs ``num_processes`` to be a multiple of it.
Inference can share a GPU between tasks (``spark.task.resource.gpu.amount = 0.25``: four tasks per
GPU), so one cluster configuration tuned for embedding can break training deep inside the
distributor with ``ValueError: invalid literal for int()``. :func:`check_spark_gpu_conf` refuses
such a configuration up front with one line naming the setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from catalog2vec.errors import InvalidInput

TASK_GPU = "spark.task.resource.gpu.amount"
EXECUTOR_GPU = "spark.executor.resource.gpu.amount"
DISCOVERY = "spark.executor.resource.gpu.discoveryScript"
VENDOR = "spark.executor.resource.gpu.vendor"
PURPOSES = ("train", "embed")


def _amount(conf: Mapping[str, str], key: str) -> float | None:
    raw = conf.get(key)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InvalidInput(f"{key} must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"{key} must be > 0, got {raw!r}")
    return value


def check_spark_gpu_conf(conf: Mapping[str, str] | Iterable[tuple[str, str]], purpose: str,
                         num_processes: int = 1) -> None:
    """Raise :class:`InvalidInput` when the Spark GPU settings cannot run ``purpose`` on GPU executors.

    * both: ``spark.executor.resource.gpu.amount`` a whole number >= 1 with a discovery script (or a
      vendor, on Kubernetes); ``spark.task.resource.gpu.amount`` set and at most the executor's;
    * ``train`` (TorchDistributor, one process per task): the task amount a whole number written as
      an integer (``"1"``, not ``"0.5"`` or ``"1.0"``), and ``num_processes`` a multiple of it;
    * ``embed``: a fraction is allowed (tasks sharing a GPU) when it divides one GPU evenly
      (1/2, 1/4, …), as Spark requires.

    >>> check_spark_gpu_conf({"spark.executor.resource.gpu.amount": "1",
    ...                       "spark.executor.resource.gpu.discoveryScript": "/opt/getGpus.sh",
    ...                       "spark.task.resource.gpu.amount": "1"}, "train", num_processes=8)
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    settings = dict(conf.items()) if isinstance(conf, Mapping) else dict(conf)
    executor = _amount(settings, EXECUTOR_GPU)
    task = _amount(settings, TASK_GPU)
    if executor is None:
        raise InvalidInput(f"GPU {purpose} needs {EXECUTOR_GPU} (GPUs per executor, e.g. 1); see docs/gpu.md")
    if executor != int(executor):
        raise InvalidInput(f"{EXECUTOR_GPU} must be a whole number of GPUs, got {settings[EXECUTOR_GPU]!r}")
    if not settings.get(DISCOVERY) and not settings.get(VENDOR):
        raise InvalidInput(f"{EXECUTOR_GPU} is set but neither {DISCOVERY} nor {VENDOR} says how to find the GPUs")
    if task is None:
        raise InvalidInput(f"GPU {purpose} needs {TASK_GPU} (1 = one task per GPU)")
    if task > executor:
        raise InvalidInput(f"{TASK_GPU}={settings[TASK_GPU]} exceeds {EXECUTOR_GPU}={settings[EXECUTOR_GPU]}: "
                           "no task could ever be scheduled")
    if purpose == "train":
        text = str(settings[TASK_GPU]).strip()
        if not text.isdigit():
            raise InvalidInput(
                f"{TASK_GPU}={text} but TorchDistributor training needs whole GPUs per process: set it to 1 "
                "for the training job (a fractional amount is for inference only)")
        if num_processes % int(text):
            raise InvalidInput(f"train.num_processes={num_processes} must be a multiple of {TASK_GPU}={text}")
    elif task < 1 and abs(1 / task - round(1 / task)) > 1e-9:
        raise InvalidInput(f"{TASK_GPU}={settings[TASK_GPU]}: a fractional amount must divide one GPU evenly "
                           "(0.5, 0.25, …)")
    elif task > 1 and task != int(task):
        raise InvalidInput(f"{TASK_GPU}={settings[TASK_GPU]}: above 1 it must be a whole number")


__all__ = ["DISCOVERY", "EXECUTOR_GPU", "TASK_GPU", "check_spark_gpu_conf"]
