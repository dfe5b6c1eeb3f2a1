"""Training end to end without Spark (delta-rs reads): resume exactness, model card contents and
'better than chance on unseen images' on the real sample (labels = articleType/baseColour words)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from catalog2vec.config import load_config
from catalog2vec.vision.train import list_checkpoints, train
from tests.unit.vision.helpers import VOCAB_VERSION, write_sample_tables

REPO = Path(__file__).resolve().parents[2]

TINY = ["train.arch=\"resnet18\"", "train.image_size=32", "train.batch_size=8", "train.epochs=2",
        "train.workers=0", "train.deterministic=true", "train.num_negatives=10", "train.checkpoint_every=2",
        "train.lr=0.01", "train.seed=7"]


def cfg(root: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_config(None, [*TINY, *extra], lakehouse=str(root), run_id="test")


def test_resume_gives_exactly_the_uninterrupted_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    root = tmp_path / "lh"
    info = write_sample_tables(root, limit=48, short_side=40)
    assert info["splits"]["train"] >= 32
    full = train(cfg(root, 'train.model_version="full"'))
    assert full is not None and full.complete and full.resumed_from_step == 0
    spe = json.loads(Path(full.model_dir, "model_card.json").read_text())["steps_per_epoch"]
    assert full.steps == 2 * spe

    # "killed" after step 3 (mid first epoch), then resumed by simply running again; the config carries
    # a credential (a tracking URI with user-info) that no checkpoint or card may hold
    secret = 'mlflow.tracking_uri="https://alice:TOPSECRET@mlflow.example/"'
    part = train(cfg(root, 'train.model_version="resumed"', "train.max_steps=3", secret))
    assert part is not None and part.steps == 3 and not part.complete
    ckpts = list_checkpoints(Path(part.model_dir) / "checkpoints")
    assert ckpts[-1][0] == 3
    ckpt = torch.load(ckpts[-1][1], weights_only=True)  # tensors and plain containers only
    assert ckpt["config"]["mlflow"]["tracking_uri"] == "https://***@mlflow.example/"
    assert b"TOPSECRET" not in Path(ckpts[-1][1]).read_bytes()
    resumed = train(cfg(root, 'train.model_version="resumed"', secret))
    assert resumed is not None and resumed.resumed_from_step == 3 and resumed.complete

    a = torch.load(Path(full.model_dir) / "model.pt", weights_only=True)
    b = torch.load(Path(resumed.model_dir) / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    for e, f in zip(full.metrics["per_epoch"], resumed.metrics["per_epoch"], strict=True):
        assert (e["val_map"], e["val_recall@5"], e["step"]) == (f["val_map"], f["val_recall@5"], f["step"])

    assert not [p for p in Path(resumed.model_dir).rglob("*") if p.is_file() and b"TOPSECRET" in p.read_bytes()]
    card = json.loads(Path(resumed.model_dir, "model_card.json").read_text())
    assert card["vocab_version"] == VOCAB_VERSION and card["num_words"] == len(info["tokens"])
    assert card["resumed_from_step"] == 3 and card["complete"] is True
    assert [e["epoch"] for e in card["metrics"]["per_epoch"]] == [1, 2]
    assert {"val_precision@5", "val_recall@5", "val_map"} <= card["metrics"]["per_epoch"][0].keys()
    assert card["images_per_s"] > 0 and card["wall_time_s"] > 0 and card["code_version"]
    assert card["data"]["train_items"] == info["splits"]["train"]
    assert card["config"]["image_size"] == 32

    # a completed run re-run: resumes at the end, trains nothing, same weights (idempotent)
    again = train(cfg(root, 'train.model_version="resumed"'))
    assert again is not None and again.steps == resumed.steps
    c = torch.load(Path(again.model_dir) / "model.pt", weights_only=True)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_derived_model_version_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "lh"
    with pytest.raises(FileNotFoundError, match="silver/vocab"):
        train(cfg(root))
    write_sample_tables(root, limit=12, short_side=40)
    with pytest.raises(ValueError, match="too few"):
        train(cfg(root, "train.batch_size=64"))
    with pytest.raises(ValueError, match="not found"):
        train(cfg(root, 'train.vocab_version="nope"'))


@pytest.mark.slow
def test_better_than_chance_on_unseen_images(tmp_path: Path) -> None:
    """Short CPU run on the 307 training images; recall@5 of the item's colour/category words on the
    test split (never trained on) must beat predicting the training word frequencies by a margin."""
    root = tmp_path / "lh"
    write_sample_tables(root, short_side=40)
    res = train(load_config(None, [
        "train.arch=\"resnet18\"", "train.loss=\"bce\"", "train.optimizer=\"adam\"", "train.lr=0.001",
        "train.image_size=32", "train.batch_size=32", "train.epochs=5", "train.workers=0",
        "train.checkpoint_every=0", "train.weight_decay=0.0",
    ], lakehouse=str(root), run_id="test"))
    assert res is not None
    card = json.loads(Path(res.model_dir, "model_card.json").read_text())
    test, base = card["metrics"]["test"], card["baseline_frequency"]["test"]
    assert test["n"] >= 30
    assert test["recall@5"] >= base["recall@5"] + 0.06, (test, base)
    assert test["map"] >= base["map"] + 0.06, (test, base)


def _pids_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (every process of the job inherits it)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "environ").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_job_group_then_resume(tmp_path: Path) -> None:
    """spark-submit jobs/train.py (TorchDistributor → torchrun → a worker in its own session),
    SIGKILL of the job's whole process group right after its first mid-epoch checkpoint: no
    process survives, nothing is published; the re-run resumes from that checkpoint and ends with
    exactly the weights of an uninterrupted run."""
    torch.set_num_threads(1)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=48, short_side=40)
    slow = ["train.epochs=4"]  # 16 steps: the kill lands after step 2 with 14 to go
    full = train(cfg(root, *slow, 'train.model_version="full"'))
    assert full is not None and full.complete and full.steps >= 12

    marker = f"CATALOG2VEC_KILL_TEST={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1], "OMP_NUM_THREADS": "1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    sets = [x for s in [*TINY, *slow, 'train.model_version="killed"'] for x in ("--set", s)]
    log = tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["spark-submit", "--master", "local[1]", "--driver-memory", "1g", "jobs/train.py",
             "--lakehouse", str(root), "--run-id", "killed", *sets],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    model = root / "models" / "killed"
    deadline = time.time() + 1200
    try:
        while not list_checkpoints(model / "checkpoints") and time.time() < deadline:
            assert proc.poll() is None, f"train ended before its first checkpoint: {log.read_text()[-3000:]}"
            time.sleep(0.02)
        assert list_checkpoints(model / "checkpoints"), f"no checkpoint in time: {log.read_text()[-3000:]}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    killed_at = list_checkpoints(model / "checkpoints")[-1][0]
    survivors = _pids_with(marker)
    for _ in range(40):  # the watchdog exits within 0.5 s; PDEATHSIG at once
        if not survivors:
            break
        time.sleep(0.25)
        survivors = _pids_with(marker)
    assert not survivors, f"processes survived the kill: {survivors}"
    time.sleep(2)  # a survivor would publish now
    assert not (model / "model.pt").exists() and not (model / "model_card.json").exists()
    ckpt = list_checkpoints(model / "checkpoints")[-1][0]
    assert ckpt == killed_at < full.steps  # nothing trained on after the kill

    resumed = train(cfg(root, *slow, 'train.model_version="killed"'))
    assert resumed is not None and resumed.resumed_from_step == ckpt and resumed.complete
    a = torch.load(Path(full.model_dir) / "model.pt", weights_only=True)
    b = torch.load(Path(resumed.model_dir) / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


@pytest.mark.spark
def test_train_job_user_errors_are_not_wrapped(spark, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A missing table inside the TorchDistributor worker is the job's own one-line error (exit 2),
    not ``RuntimeError: TorchDistributor failed during training``."""
    import train as train_job

    rc = train_job.main(["--lakehouse", str(tmp_path / "lh"), "--run-id", "t", *[x for s in TINY for x in ("--set", s)]])
    err = capsys.readouterr().err
    assert rc == 2 and "build_vocab" in err and "TorchDistributor failed" not in err
