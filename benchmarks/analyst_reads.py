"""Analyst reads: what a lookup of a few images costs with the item_id filter pushed into the
Delta read (catalog2vec.retrieval.store.item_images) against the former full read of the
(item_id, image) columns followed by an in-memory filter.

The table is a silver/images-shaped Delta table written with delta-rs: --files files of --rows
rows each with --image-kb random (incompressible, like JPEG) bytes per image, item ids in
ascending ranges per file — the layout maintain_tables' Z-order by item_id produces. Bytes read
are counted by a real local filesystem wrapped to count what it serves.

  .venv/bin/python benchmarks/analyst_reads.py --files 20 --rows 200 --image-kb 20 --lookup 9
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def counting_fs(root: str) -> tuple[Any, dict[str, int]]:
    from fsspec.implementations.local import LocalFileSystem
    from pyarrow import fs as pa_fs

    stats = {"files": 0, "bytes": 0}

    class Counting(LocalFileSystem):  # type: ignore[misc]
        def _open(self, path: str, mode: str = "rb", **kw: Any) -> Any:
            stats["files"] += 1
            f = super()._open(path, mode=mode, **kw)
            read = f.read

            def counted(*a: Any) -> bytes:
                data = read(*a)
                stats["bytes"] += len(data)
                return data

            f.read = counted
            return f

    return pa_fs.SubTreeFileSystem(root, pa_fs.PyFileSystem(pa_fs.FSSpecHandler(Counting(skip_instance_cache=True)))), stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--image-kb", type=int, default=20)
    ap.add_argument("--lookup", type=int, default=9)
    args = ap.parse_args(argv)

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import write_deltalake

    from catalog2vec.lakehouse import read_arrow, table_path
    from catalog2vec.schemas import silver

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = table_path(tmp, silver.IMAGES)
        n = args.rows
        for f in range(args.files):
            ids = [f"{f:04d}{i:05d}" for i in range(n)]
            write_deltalake(path, pa.table({
                "item_id": ids, "image_uri": [None] * n, "sha256": ["0" * 64] * n, "width": [256] * n,
                "height": [256] * n, "orig_width": [256] * n, "orig_height": [256] * n, "orig_mode": ["RGB"] * n,
                "image": [os.urandom(args.image_kb * 1024) for _ in ids], "run_id": ["bench"] * n,
            }, schema=silver.IMAGES.arrow_schema()), mode="append")
        total = args.files * n
        wanted = [f"{int(f):04d}{int(i):05d}" for f, i in zip(rng.integers(0, args.files, args.lookup),
                                                              rng.integers(0, n, args.lookup), strict=True)]
        out: dict[str, Any] = {"images": total, "files": args.files, "image_kb": args.image_kb,
                               "lookup": args.lookup, "distinct_files_holding_them": len({w[:4] for w in wanted})}
        for label, filters in (("full_read_then_filter", None), ("pushdown", [("item_id", "in", wanted)])):
            fs, stats = counting_fs(path)
            t0 = time.perf_counter()
            t = read_arrow(tmp, silver.IMAGES, ["item_id", "image"], filters, filesystem=fs)
            if filters is None:
                t = t.filter(pc.is_in(t["item_id"], value_set=pa.array(wanted)))
            seconds = time.perf_counter() - t0
            assert t.num_rows == len(set(wanted))
            out[label] = {"seconds": round(seconds, 4), "files_opened": stats["files"],
                          "mb_read": round(stats["bytes"] / 2**20, 2)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
