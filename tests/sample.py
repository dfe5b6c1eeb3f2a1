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
import os
import tempfile
from collections import defaultdict
from pathlib import Path

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
