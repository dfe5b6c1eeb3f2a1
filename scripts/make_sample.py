"""Regenerate examples/data/ (the demo sample) from ../shared/data/myntra.

Deterministic: the 24 most common article types, 16 items each, chosen by a hash of the item id.
Writes examples/data/styles.csv and copies examples/data/images/<id>.jpg (real photos).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "myntra"
DST = Path(__file__).resolve().parents[1] / "examples" / "data"
TYPES, PER_TYPE = 24, 16


def main() -> int:
    if not (SRC / "styles.csv").exists():
        print(f"{SRC} not found", file=sys.stderr)
        return 1
    rows = list(csv.DictReader((SRC / "styles.csv").open(encoding="utf-8")))
    fields = list(rows[0].keys())
    top = [t for t, _ in Counter(r["articleType"] for r in rows).most_common(TYPES)]
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["articleType"] in top and (SRC / "images" / f"{r['id']}.jpg").exists():
            by_type[r["articleType"]].append(r)
    chosen = []
    for t in top:
        items = sorted(by_type[t], key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
        chosen.extend(items[:PER_TYPE])
    chosen.sort(key=lambda r: int(r["id"]))
    (DST / "images").mkdir(parents=True, exist_ok=True)
    with (DST / "styles.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(chosen)
    for r in chosen:
        shutil.copyfile(SRC / "images" / f"{r['id']}.jpg", DST / "images" / f"{r['id']}.jpg")
    print(f"wrote {len(chosen)} items to {DST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
