"""Faults of the cluster during distributed training (issue 35) on the local standalone cluster (a
master and two 1-core worker JVMs on 127.0.0.1, started for this module by the ``standalone``
fixture): ``spark-submit jobs/train.py --config conf/standalone.toml`` trains with two
TorchDistributor ranks (``local_mode=False``: a barrier stage of two Spark tasks, one per worker,
each running ``torchrun`` with one rank; gloo on the CPU); the lakehouse is on local disk, which the
workers share with the driver on this one machine.

* **one rank SIGKILLed** right after the first checkpoint (the rank process, found in /proc under
  this cluster's worker JVMs — not the application, not the driver): the barrier stage fails, the
  job fails (non-zero exit, the cause in its output and its run record), no rank outlives it, nothing
  is published; a re-submission resumes from the checkpoint and ends with exactly the weights of an
  uninterrupted 2-rank run on the same cluster;
* **a worker JVM SIGKILLed** (with its executor and ranks) mid-training: the executor is lost
  (``ExecutorLostFailure``), the surviving rank's gloo read fails, and as Spark does not re-run a
  failed barrier result stage the job fails (non-zero exit), no rank outlives it, nothing is
  published; with the worker back, a re-submission resumes to the uninterrupted weights.

Both are ``long`` (``make test-long``; a new module starts its own cluster). Their cheap slice in
``make test`` is tests/integration/test_rank_kill.py (the same kill in local mode, fails cleanly).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.integration.test_train_resume import TINY
from tests.unit.vision.helpers import write_sample_tables

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.standalone, pytest.mark.long,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

STANDALONE = str(REPO / "conf" / "standalone.toml")
DIST = [*TINY, "train.epochs=2", "train.checkpoint_every=1"]
# a guard: should Spark ever re-run the barrier stage with a worker gone, the slot check fails after
# 3 checks 2 s apart instead of 40 x 15 s (Spark 4.2 does not re-run a failed barrier result stage)
BARRIER_CHECK = ["--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.interval=2s",
                 "--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=3"]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _descends_from(pid: int, ancestors: set[int]) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid in ancestors:
            return True
        pid, seen = _ppid(pid), seen + 1
    return False


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def cluster_ranks(info: Any) -> dict[int, int]:
    """rank -> pid of the training processes (torchrun's workers: ``RANK`` and
    ``TORCHELASTIC_RUN_ID`` in their environment) running under this cluster's worker JVMs."""
    workers = set(info.worker_pids)
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        env = _environ(int(d.name))
        if not any(e.startswith(b"TORCHELASTIC_RUN_ID=") for e in env):
            continue
        rank = next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)
        if rank is not None and _descends_from(int(d.name), workers):
            out[rank] = int(d.name)
    return out


def training_processes(info: Any) -> list[int]:
    """torchrun agents and ranks alive under this cluster's worker JVMs."""
    workers = set(info.worker_pids)
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        training = ("torch.distributed.run" in cmd or "torchrun" in cmd
                    or any(e.startswith(b"TORCHELASTIC_RUN_ID=") for e in _environ(int(d.name))))
        if training and _descends_from(int(d.name), workers):
            found.append(int(d.name))
    return found


def train_cmd(info: Any, root: Path, version: str, run_id: str, extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    from catalog2vec import standalone as cl

    sets = [f"--set={s}" for s in [*DIST, f'train.model_version="{version}"']]
    cmd, env = cl.submit_command(info.master_url, [*extra, str(REPO / "jobs" / "train.py"), "--config", STANDALONE,
                                                   "--lakehouse", str(root), "--run-id", run_id, *sets])
    return cmd, {**env, "OMP_NUM_THREADS": "1"}


def submit_train(info: Any, root: Path, version: str, run_id: str, cwd: Path,
                 extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    cmd, env = train_cmd(info, root, version, run_id, extra)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1500)


def checkpoints(root: Path, version: str) -> list[int]:
    from catalog2vec.vision.train import list_checkpoints

    return [step for step, _ in list_checkpoints(str(root / "models" / version / "checkpoints"))]


def published(root: Path, version: str) -> bool:
    model = root / "models" / version
    return (model / "model.pt").exists() or (model / "model_card.json").exists()


def run_record(root: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((root / "_runs" / run_id / "train.json").read_text()))


def assert_same_weights(root: Path, a: str, b: str) -> None:
    import torch

    wa = torch.load(root / "models" / a / "model.pt", weights_only=True)
    wb = torch.load(root / "models" / b / "model.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])][:5]


def fault_during_training(info: Any, root: Path, version: str, cwd: Path, inject: Any,
                          extra: Sequence[str] = ()) -> tuple[int, int, str, float, list[int]]:
    """Submit training, call ``inject()`` right after its first checkpoint; returns (exit code,
    the last checkpoint step, the job's output, seconds from the fault to the job's end, the
    torchrun agents and ranks alive just before the fault)."""
    cmd, env = train_cmd(info, root, version, "faulted", extra)
    log = cwd / f"{version}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 900
        while not checkpoints(root, version) and time.time() < deadline:
            assert proc.poll() is None, "train ended before its first checkpoint: " + log.read_text()[-4000:]
            time.sleep(0.05)
        before = training_processes(info)
        inject()
        t_fault = time.time()
        step = checkpoints(root, version)[-1]
        rc = proc.wait(timeout=900)
        took = time.time() - t_fault
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return rc, step, log.read_text(errors="replace"), took, before


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists()
            and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[-1].split()[:1]]


def assert_failed_cleanly(info: Any, root: Path, version: str, rc: int, out: str, before: list[int]) -> None:
    """Non-zero exit (not our kill), no training process left — neither one alive before the fault
    (an orphan re-parented away from its worker JVM included) nor a new one under the workers —, no
    application left on the master, nothing published, a run record with the failure."""
    from catalog2vec import standalone as cl

    assert rc not in (0, -signal.SIGKILL), out[-4000:]
    assert len(before) >= 4, before  # 2 torchrun agents + 2 ranks were running

    def left() -> list[int]:
        return sorted(set(_alive(before)) | set(training_processes(info)))

    deadline = time.time() + 120
    while time.time() < deadline and (left() or cl.master_state(info.web_ui).get("activeapps")):
        time.sleep(0.5)
    assert not left(), f"ranks or torchrun agents outlived the failed job: {left()}"
    assert not cl.master_state(info.web_ui).get("activeapps")
    time.sleep(1)  # a surviving rank would publish now
    assert not published(root, version) and not (root / "models" / "LATEST").exists()
    record = run_record(root, "faulted")
    assert record["status"] == "failed" and record["exit_code"] == rc, record


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults") / "lh"
    write_sample_tables(root, limit=48, short_side=40)
    return root


@pytest.fixture(scope="module")
def reference(standalone: Any, lake: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An uninterrupted 2-rank run on the cluster with the same config."""
    done = submit_train(standalone, lake, "reference", "reference", tmp_path_factory.mktemp("ref"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    card = json.loads((lake / "models" / "reference" / "model_card.json").read_text())
    assert card["world_size"] == 2 and card["complete"] is True and card["resumed_from_step"] == 0
    (lake / "models" / "LATEST").unlink(missing_ok=True)  # the fault runs must not find one
    return "reference"


def test_a_rank_killed_on_the_cluster_fails_the_job_and_the_resubmission_resumes(
        standalone: Any, lake: Path, reference: str, tmp_path: Path) -> None:
    victims: list[int] = []

    def kill_rank_1() -> None:
        ranks = cluster_ranks(standalone)
        assert 1 in ranks, f"no RANK=1 process under the worker JVMs: {ranks}"
        os.kill(ranks[1], signal.SIGKILL)
        victims.append(ranks[1])

    rc, step, out, took, before = fault_during_training(standalone, lake, "rank-killed", tmp_path, kill_rank_1)
    print(f"[rank kill] exit {rc} {took:.1f}s after the kill; checkpoint step {step}")
    assert_failed_cleanly(standalone, lake, "rank-killed", rc, out, before)
    assert victims and step >= 1
    # Spark does not re-run a failed barrier ResultStage: the job ends; the record names the failure
    assert "Could not recover from a failed barrier ResultStage" in out, out[-4000:]
    record = run_record(lake, "faulted")
    assert "barrier" in record["error"]["message"]
    assert record["retries"] == {"spark_task_failed:RuntimeError": 1}, record["retries"]  # the killed rank's task
    again = submit_train(standalone, lake, "rank-killed", "resubmitted", tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-4000:]
    card = json.loads((lake / "models" / "rank-killed" / "model_card.json").read_text())
    assert card["complete"] is True and card["world_size"] == 2
    assert 1 <= card["resumed_from_step"] == step < card["steps"], (card["resumed_from_step"], step)
    assert_same_weights(lake, "rank-killed", reference)
    (lake / "models" / "LATEST").unlink(missing_ok=True)


def test_a_worker_jvm_killed_mid_training_fails_the_job_and_the_resubmission_resumes(
        standalone: Any, lake: Path, reference: str, tmp_path: Path) -> None:
    """Last in the module: it restarts the cluster (a new master and two workers) for the re-submission."""
    from catalog2vec import standalone as cl

    killed: list[int] = []

    def kill_worker_1() -> None:
        assert 1 in cluster_ranks(standalone), "rank 1 is not running under a worker JVM"
        killed.append(cl.kill_worker(standalone, 1))  # the worker JVM's group: its executor, torchrun, rank

    rc, step, out, took, before = fault_during_training(standalone, lake, "worker-killed", tmp_path, kill_worker_1,
                                                        extra=BARRIER_CHECK)
    print(f"[worker kill] exit {rc} {took:.1f}s after the kill; checkpoint step {step}")
    assert killed and step >= 1
    assert_failed_cleanly(standalone, lake, "worker-killed", rc, out, before)
    assert "barrier" in out.lower(), out[-4000:]  # the cause: the barrier stage lost its slots
    retries = run_record(lake, "faulted")["retries"]
    print(f"[worker kill] run record retries: {retries}")
    assert retries == {"spark_task_failed:ExecutorLostFailure": 1}, retries  # the lost worker's task
    info = cl.start(standalone.run_dir, workers=2, cores=1, memory="1500m", timeout=240)  # the worker back
    again = submit_train(info, lake, "worker-killed", "resubmitted-w", tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-4000:]
    card = json.loads((lake / "models" / "worker-killed" / "model_card.json").read_text())
    assert card["complete"] is True and card["world_size"] == 2
    assert 1 <= card["resumed_from_step"] == step < card["steps"], (card["resumed_from_step"], step)
    assert_same_weights(lake, "worker-killed", reference)
