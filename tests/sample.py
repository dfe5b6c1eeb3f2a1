"""The test suite's view of the bundled sample: its cheap 384-item *core*.

``examples/data`` holds the demo sample (1,920 real Myntra items, 24 article types x 80, built by
scripts/make_sample.py). Tests keep to its core: per article type the 16 items first in SHA-256
order of the id (exactly the original 384-item sample, item 10039 included), written once as
``styles.csv`` in a temporary directory whose ``images`` links to ``examples/data/images``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FULL_SAMPLE = REPO / "examples" / "data"
CORE_PER_TYPE = 16
CORE_ITEMS = 384


def core_rows(per_type: int = CORE_PER_TYPE) -> tuple[list[str], list[dict[str, str]]]:
    with (FULL_SAMPLE / "styles.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = list(reader.fieldnames or [])
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_type[r["articleType"]].append(r)
    chosen = [r for items in by_type.values()
              for r in sorted(items, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:per_type]]
    order = {id(r): i for i, r in enumerate(rows)}
    return fields, sorted(chosen, key=lambda r: order[id(r)])  # the CSV's own order


@functools.cache
def core_sample_dir() -> Path:
    """The core sample directory (styles.csv + images link), created once, atomically."""
    digest = hashlib.sha256((FULL_SAMPLE / "styles.csv").read_bytes()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"catalog2vec-sample-core-{digest}"
    if (target / "styles.csv").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(prefix="catalog2vec-sample-core-", dir=target.parent))
    fields, rows = core_rows()
    with (tmp / "styles.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.symlink(FULL_SAMPLE / "images", tmp / "images")
    with contextlib.suppress(OSError):  # another process won the race
        os.rename(tmp, target)
    return target


# the small pipeline the cluster tests and benchmarks/cluster_vs_local.py submit (same settings)
SMALL_PIPELINE = ("train.image_size=32", "train.epochs=1", "train.batch_size=16", "train.checkpoint_every=0",
                  "similarity.epochs=2", "ctr.num_trees=10", "cluster.k=6")

_DRIVER = '''
import importlib.util, json, sys
sys.path.insert(0, {jobs!r})
spec = importlib.util.spec_from_file_location("demo", {demo!r})
demo = importlib.util.module_from_spec(spec); spec.loader.exec_module(demo)
timings = demo.run_steps(demo.steps({root!r}, {run_id!r}, {small!r}, impressions=3000,
                                    feature_version={feature_version!r}, max_train=120, config={config!r},
                                    sample={sample!r}))
from catalog2vec.spark import get_spark
sc = get_spark().sparkContext
print("PIPELINE=" + json.dumps({{"timings": timings, "master": sc.master, "app_id": sc.applicationId}}))
'''


def write_pipeline_driver(script: Path, root: str, run_id: str, feature_version: str, config: str) -> Path:
    """A spark-submit driver running scripts/demo.py's steps on the 384-item core with
    :data:`SMALL_PIPELINE`; it prints ``PIPELINE={"timings", "master", "app_id"}`` (JSON)."""
    script.write_text(_DRIVER.format(jobs=str(REPO / "jobs"), demo=str(REPO / "scripts" / "demo.py"), root=root,
                                     run_id=run_id, small=SMALL_PIPELINE, feature_version=feature_version,
                                     config=config, sample=str(core_sample_dir() / "styles.csv")))
    return script


def pipeline_result(stdout: str) -> dict[str, Any] | None:
    """The driver's ``PIPELINE=`` JSON line, or None when it printed none."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("PIPELINE=")), None)
    return json.loads(line.split("=", 1)[1]) if line else None
