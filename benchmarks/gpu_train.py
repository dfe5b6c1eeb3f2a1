"""GPU training benchmark (issue 13, item 5): the ResNet-50 / 224 px / bf16 configuration on a GPU.

Runs on a machine with CUDA and torch but no Spark: the training job's ``--no-spark`` path over a
lakehouse whose ``silver/images``, ``silver/item_labels``, ``silver/vocab`` and ``vocab/`` were
built by the Spark jobs elsewhere (``benchmarks/model_quality.py`` builds them for the whole
shared Myntra catalog) and copied over. Two measurements in one run:

1. **throughput**: optimizer steps of the project's network (``build_model`` + ``LossModule``,
   bce) on synthetic 224 px batches already on the GPU, bf16 autocast + channels_last against
   fp32 (TF32 off) in the same run — the ratio printed, and both against NVIDIA's published
   ResNet-50 training rate (2,470 img/s, one A100, AMP, DeepLearningExamples). No data loading.
2. **train**: ``jobs/train.py --no-spark --config <config>`` end to end (JPEG decode and
   augmentation in DataLoader workers, per-epoch validation, checkpoints, final test, model card),
   once per ``--run NAME=SET,SET`` (``--set`` overrides). The card's images/s is the end-to-end
   training rate.

The model card of each run (and its weights, as bf16 chunks under 16 MB, ``--export-weights``) go to
``--out``; ``--reassemble DIR`` turns those chunks back into a ``models/<version>/`` directory on the
machine that runs the project's embed + evaluate jobs.

On a machine with torch but no project install (the 2026-12-04 H200 run): install the ``deltalake``,
``arro3-core`` and ``nltk`` wheels with ``pip --target build/gpu_site``, link
``catalog2vec/schemas -> ../schemas`` (the installed package maps it with ``package-dir``) and set
``PYTHONPATH=$PWD:$PWD/build/gpu_site``.

examples (on the GPU machine, from the repository root):
  python benchmarks/gpu_train.py --lakehouse .gpu_lh --out $OUT --throughput \\
      --run 'paper=train.workers=12' --run-timeout 290 \\
      --run 'recipe=train.loss="bce",train.head="cosine",train.embed_dim=128,...' --run-timeout 150 \\
      --export-weights recipe
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NVIDIA_IMG_S = 2470.0  # ResNet-50 v1.5 training, 1x A100 80GB, AMP (NVIDIA DeepLearningExamples)
CHUNK = 15 * 2**20


def _rate(amp: bool, batch: int, steps: int, warmup: int) -> float:
    """Images/s of optimizer steps of the project's ResNet-50 on one synthetic batch kept on the GPU."""
    import torch

    from catalog2vec.vision.model import build_model
    from catalog2vec.vision.train import LossModule, autocast

    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    model = build_model("resnet50", 1000, 0, 0.0, "", "bce", "linear").to(dev)
    fmt = torch.channels_last if amp else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = LossModule(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 224, 224, device=dev).to(memory_format=fmt)
    y = (torch.rand(batch, 1000, device=dev) < 0.01).float()
    pos = torch.zeros(batch, dtype=torch.long, device=dev)
    neg = torch.empty(0, dtype=torch.long, device=dev)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast(dev, amp):
            loss = net(x, pos, y, neg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def throughput(batch: int, steps: int, warmup: int) -> dict[str, float]:
    import torch

    out: dict[str, float] = {}
    for name, amp in (("bf16_channels_last", True), ("fp32", False)):
        out[name] = _rate(amp, batch, steps, warmup)
        torch.cuda.empty_cache()
        print(f"[throughput] {name}: {out[name]:.0f} img/s (batch {batch}, {steps} timed steps)", flush=True)
    out["bf16_vs_fp32"] = out["bf16_channels_last"] / out["fp32"]
    out["bf16_vs_nvidia_a100_amp"] = out["bf16_channels_last"] / NVIDIA_IMG_S
    print(f"[throughput] bf16/fp32 {out['bf16_vs_fp32']:.2f}x; bf16 vs NVIDIA's A100 AMP 2,470 img/s: "
          f"{out['bf16_vs_nvidia_a100_amp']:.2f}x", flush=True)
    return out


def export_weights(model_dir: Path, out: Path, name: str) -> list[str]:
    """model.pt with its float weight matrices and kernels as bf16 (vectors — biases, norms, their
    running statistics — stay fp32), split into chunks under 16 MB."""
    import torch

    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=False)
    tensors = state.get("state_dict", state) if isinstance(state, dict) else state
    conv = {k: (v.to(torch.bfloat16) if hasattr(v, "is_floating_point") and v.is_floating_point() and v.dim() > 1
                else v)
            for k, v in tensors.items()}
    packed = dict(state)
    if "state_dict" in state:
        packed["state_dict"] = conv
    else:
        packed = conv
    buf = io.BytesIO()
    torch.save(packed, buf)
    data = buf.getvalue()
    names = []
    for i in range(0, len(data), CHUNK):
        p = out / f"{name}.bf16.{i // CHUNK:02d}"
        p.write_bytes(data[i:i + CHUNK])
        names.append(p.name)
    return names


def reassemble(chunks: str, dest: Path, card: Path) -> None:
    """bf16 chunks + model card -> dest/model.pt (fp32) + model_card.json (vocab.parquet: copy it)."""
    import torch

    parts = sorted(glob.glob(chunks + ".bf16.*"))
    state = torch.load(io.BytesIO(b"".join(Path(p).read_bytes() for p in parts)), map_location="cpu",
                       weights_only=False)
    tensors = state.get("state_dict", state)
    for k, v in list(tensors.items()):
        if hasattr(v, "is_floating_point") and v.is_floating_point():
            tensors[k] = v.float()
    dest.mkdir(parents=True, exist_ok=True)
    torch.save(state, dest / "model.pt")
    (dest / "model_card.json").write_text(card.read_text())


def train_run(lakehouse: str, config: str, name: str, overrides: list[str], out: Path, export: bool,
              timeout: float | None = None) -> dict:
    cmd = [sys.executable, str(REPO / "jobs" / "train.py"), "--no-spark", "--config", config, "--lakehouse",
           lakehouse, "--model-version", f"gpu-{name}", "--run-id", f"gpu-{name}",
           *[f"--set={o}" for o in overrides if o]]
    print("[train]", " ".join(cmd), flush=True)
    t0 = time.time()
    with open(out / f"train_{name}.log", "w") as log:
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124  # stopped at --run-timeout: its checkpoints stay, a rerun resumes
    wall = time.time() - t0
    mdir = Path(lakehouse) / "models" / f"gpu-{name}"
    result: dict = {"name": name, "overrides": overrides, "rc": rc, "wall_s": wall}
    if rc == 0 and (mdir / "model_card.json").is_file():
        card = json.loads((mdir / "model_card.json").read_text())
        (out / f"model_card_{name}.json").write_text(json.dumps(card, indent=1))
        m = card.get("metrics", {})
        result.update(images_per_s=card.get("images_per_s"), train_time_s=card.get("train_time_s"),
                      steps=card.get("steps"), test=m.get("test"), collapse=card.get("collapse"))
        for e in m.get("per_epoch", []):
            print(f"  [{name}] epoch {e['epoch']:2d} loss_ema {e.get('train_loss_ema', 0):.4f} "
                  f"val p@5 {e.get('val_precision@5', 0):.4f} mAP {e.get('val_map', 0):.4f} "
                  f"{e.get('epoch_images_per_s', 0):.0f} img/s", flush=True)
        ips = float(card.get("images_per_s") or 0)
        print(f"[train] {name}: rc 0, wall {wall:.0f} s, {ips:.0f} img/s end to end "
              f"({ips / NVIDIA_IMG_S:.2f}x NVIDIA's 2,470), test {json.dumps(m.get('test'))}, "
              f"collapse {json.dumps(card.get('collapse'))}", flush=True)
        if export:
            result["weights"] = export_weights(mdir, out, name)
    else:
        print(f"[train] {name}: rc {rc} after {wall:.0f} s (see train_{name}.log)", flush=True)
        os.system(f"tail -30 {out / f'train_{name}.log'}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lakehouse", default=".gpu_lh")
    ap.add_argument("--config", default=str(REPO / "conf" / "cluster.toml"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gpu_train")))
    ap.add_argument("--throughput", action="store_true", help="the synthetic-batch throughput measurement")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--run", action="append", default=[], metavar="NAME=SET,SET",
                    help="one training run with these config overrides (repeatable)")
    ap.add_argument("--export-weights", action="append", default=[], metavar="NAME",
                    help="write this run's weights as bf16 chunks to --out (repeatable)")
    ap.add_argument("--run-timeout", type=float, action="append", default=[],
                    help="seconds for the i-th --run (repeatable, in order; none = no limit)")
    ap.add_argument("--reassemble", nargs=3, metavar=("CHUNKS_PREFIX", "DEST_DIR", "CARD"))
    args = ap.parse_args(argv)
    if args.reassemble:
        reassemble(args.reassemble[0], Path(args.reassemble[1]), Path(args.reassemble[2]))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_train: no CUDA device", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"benchmark": "gpu_train", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cpus": os.cpu_count()}
    if args.throughput:
        result["throughput"] = throughput(args.batch, args.steps, warmup=10)
    result["runs"] = []
    for i, spec in enumerate(args.run):
        name, _, sets = spec.partition("=")
        limit = args.run_timeout[i] if i < len(args.run_timeout) else None
        result["runs"].append(train_run(args.lakehouse, args.config, name, [s for s in sets.split(",") if s],
                                        args.out, name in args.export_weights, limit))
        (args.out / "gpu_train.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu_train.json").write_text(json.dumps(result, indent=1))
    logs = sorted(args.out.glob("train_*.log"))  # one file back (the machine returns 8 at most)
    if logs:
        with open(args.out / "train.log", "w") as fh:
            for log in logs:
                fh.write(f"===== {log.name}\n" + "".join(log.read_text().splitlines(True)[-400:]))
                log.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
