"""benchmarks/gpu.py in its CPU mode, at a toy size: the record a GPU session will read back (issue 32).

The device run is one call with no second chance, so the script's record, its ratios and its time
budget are checked here on the CPU, where CI runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
TOY = ["--device", "cpu", "--arch", "resnet18", "--image-size", "32", "--batch", "4", "--embed-batches", "4",
       "--vocab", "40", "--train-steps", "1", "--workers", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_jpegs_have_the_catalog_geometry(gpu_bench: ModuleType) -> None:
    from torchvision.io import decode_jpeg

    jpegs = gpu_bench.synthetic_jpegs(4)
    shapes = [tuple(decode_jpeg(torch.frombuffer(bytearray(j), dtype=torch.uint8)).shape) for j in jpegs]
    assert shapes == [(3, 256, 256), (3, 341, 256), (3, 341, 256), (3, 341, 256)]  # short side 256
    assert jpegs == gpu_bench.synthetic_jpegs(4)  # deterministic: the same bytes in every session


def test_cpu_mode_record_has_every_pair_and_its_ratio(gpu_bench: ModuleType, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        assert gpu_bench.main([*TOY, "--out", str(tmp_path / "rec.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["device"].startswith("cpu") and rec["skipped"] == [] and rec["elapsed_s"] < rec["config"]["budget_s"]
    assert rec["decode_img_s"] > 0 and rec["mean_jpeg_bytes"] > 1000
    embed = rec["embed"]["4"]
    assert embed["ratio"] == pytest.approx(embed["embed_core_img_s"] / embed["bare_forward_img_s"])
    train = rec["train"]
    assert train["ratio"] == pytest.approx(train["train_loop_img_s"] / train["bare_step_img_s"])
    assert 0 < embed["ratio"] < 3 and 0 < train["ratio"] < 3  # toy sizes: plausible, not the target


def test_budget_skips_what_would_start_after_it(gpu_bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "rec.json"
    assert gpu_bench.main([*TOY, "--budget-s", "0", "--skip", "train", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["skipped"] == ["decode (budget 0 s spent)", "embed (budget 0 s spent)"]
    assert "decode_img_s" not in rec and "embed" not in rec and "train" not in rec
