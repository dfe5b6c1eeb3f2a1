"""Fixtures shared by the embedding tests: silver/images from the bundled sample and a tiny
random-init model directory (resnet18, 64 px) under ``<lakehouse>/models/<version>``."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

from tests.sample import core_sample_dir

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = core_sample_dir()  # the 384-item core of the bundled sample (tests/sample.py)
IMAGE_SIZE = 64


def sample_ids() -> list[str]:
    with (EXAMPLES / "styles.csv").open(newline="") as fh:
        return sorted(row["id"] for row in csv.DictReader(fh))


def image_rows(ids: list[str], run_id: str = "fixture") -> list[dict[str, Any]]:
    from PIL import Image

    rows = []
    for item_id in ids:
        path = EXAMPLES / "images" / f"{item_id}.jpg"
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            w, h, mode = img.width, img.height, img.mode
        rows.append(
            {
                "item_id": item_id,
                "image_uri": str(path),
                "sha256": hashlib.sha256(data).hexdigest(),
                "width": w,
                "height": h,
                "orig_width": w,
                "orig_height": h,
                "orig_mode": mode,
                "image": data,
                "run_id": run_id,
            }
        )
    return rows


def write_silver_images(spark: Any, lakehouse: Path, ids: list[str] | None = None,
                        rows: list[dict[str, Any]] | None = None) -> int:
    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import silver

    rows = rows if rows is not None else image_rows(ids if ids is not None else sample_ids())
    df = spark.createDataFrame(rows, silver.IMAGES.spark_schema())
    write_table(spark, df, silver.IMAGES, lakehouse, mode="merge")
    return len(rows)


def sample_vocab(size: int = 120) -> list[str]:
    counts: Counter[str] = Counter()
    with (EXAMPLES / "styles.csv").open() as fh:
        for row in csv.DictReader(fh):
            text = " ".join([row["productDisplayName"], row["articleType"], row["baseColour"]]).lower()
            counts.update(t for t in re.findall(r"[a-z]+", text) if len(t) > 2)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def save_tiny_model(lakehouse: Path, version: str = "m-test", seed: int = 0, tokens: list[str] | None = None,
                    loss: str = "softmax") -> Path:
    import torch

    from catalog2vec.vision import model_dir
    from catalog2vec.vision.model import build_model, save_model_dir

    tokens = tokens or sample_vocab()
    torch.manual_seed(seed)
    model = build_model("resnet18", len(tokens), embed_dim=32, loss=loss)
    # a random-init ResNet's pooled features are nearly constant across images; spread the head so
    # the top tags differ per item (deterministic given the seed)
    torch.nn.init.normal_(model.words.weight, std=1.0)
    calibrate_batchnorm(model)
    path = Path(model_dir(lakehouse, version))
    save_model_dir(path, model.eval(), tokens, "v-test", {"image_size": IMAGE_SIZE},
                   {"model_version": version})
    return path


def calibrate_batchnorm(model: Any, n: int = 48) -> None:
    """Set the BatchNorm running statistics from sample images (one no-grad pass in train mode) so a
    random-init network gives embeddings that differ per image (as a trained one does)."""
    import torch

    from catalog2vec.embed.core import Preprocessor

    pre = Preprocessor(IMAGE_SIZE)
    x, _ = pre.batch([(EXAMPLES / "images" / f"{i}.jpg").read_bytes() for i in sample_ids()[:n]])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


_DEMO: dict[str, Path] = {}
DEMO_VERSION = "m-demo"


def demo_lakehouse(spark: Any, base: Path) -> Path:
    """A lakehouse with bronze/catalog_items (the sample CSV), silver/images (384 items), a tiny model
    and the gold tables written by ``jobs/embed.py``; built once per test process (read-only)."""
    if "root" in _DEMO:
        return _DEMO["root"]
    import embed
    import ingest_catalog

    root = base / "demo_lakehouse"
    root.mkdir(parents=True, exist_ok=True)
    rc = ingest_catalog.main([
        "--input", str(EXAMPLES / "styles.csv"), "--format", "csv", "--lakehouse", str(root),
        "--mapping", "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender",
        "--image-template", "images/{item_id}.jpg", "--run-id", "demo",
    ])
    assert rc == 0
    write_silver_images(spark, root)
    save_tiny_model(root, DEMO_VERSION)
    rc = embed.main(["--lakehouse", str(root), "--model-version", DEMO_VERSION, "--run-id", "demo"])
    assert rc == 0
    _DEMO["root"] = root
    return root
