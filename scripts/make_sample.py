"""Regenerate examples/data/ (the demo sample) from ../shared/data/myntra.

Deterministic: the 24 most common article types of the catalog, 80 items each (1,920 real items),
chosen per type by the SHA-256 of the item id; photos downscaled to 96 x 96 JPEG (quality 90), so
the sample stays under 10 MB. The first 16 items of each type in that hash order are the original
384-item sample, which the test suite still uses as its cheap "core" subset (tests/sample.py).
Writes examples/data/styles.csv and examples/data/images/<id>.jpg.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "myntra"
DST = Path(__file__).resolve().parents[1] / "examples" / "data"
TYPES, PER_TYPE, SIZE, QUALITY = 24, 80, 96, 90


def id_hash(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=SRC)
    parser.add_argument("--dst", type=Path, default=DST)
    parser.add_argument("--per-type", type=int, default=PER_TYPE)
    parser.add_argument("--size", type=int, default=SIZE)
    args = parser.parse_args(argv)
    src, dst = args.src, args.dst
    if not (src / "styles.csv").exists():
        print(f"{src} not found", file=sys.stderr)
        return 1
    rows = list(csv.DictReader((src / "styles.csv").open(encoding="utf-8")))
    fields = list(rows[0].keys())
    top = [t for t, _ in Counter(r["articleType"] for r in rows).most_common(TYPES)]
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["articleType"] in top and (src / "images" / f"{r['id']}.jpg").exists():
            by_type[r["articleType"]].append(r)
    chosen = []
    for t in top:
        chosen.extend(sorted(by_type[t], key=lambda r: id_hash(r["id"]))[: args.per_type])
    chosen.sort(key=lambda r: int(r["id"]))
    if (dst / "images").exists():
        shutil.rmtree(dst / "images")
    (dst / "images").mkdir(parents=True)
    with (dst / "styles.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(chosen)
    for r in chosen:
        with Image.open(src / "images" / f"{r['id']}.jpg") as img:
            small = img.convert("RGB").resize((args.size, args.size), Image.Resampling.LANCZOS)
            small.save(dst / "images" / f"{r['id']}.jpg", "JPEG", quality=QUALITY)
    total = sum(p.stat().st_size for p in (dst / "images").glob("*.jpg")) + (dst / "styles.csv").stat().st_size
    print(f"wrote {len(chosen)} items ({total / 1e6:.1f} MB) to {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
