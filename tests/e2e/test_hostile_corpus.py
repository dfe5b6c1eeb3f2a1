"""The hostile corpus (tests/data/hostile, made by scripts/make_hostile_corpus.py) through
ingest (CSV, JSON lines, Parquet) → vocab → labels → images → train (2 steps) → embed.

Per case the expected outcome (a row, an older duplicate, or the quarantine reason), every job's
accounting from its run record (<lakehouse>/_runs/<run_id>/<job>.json), every table readable by
delta-rs, pandas and DuckDB, nothing written outside the lakehouse, and a second run that changes
nothing (no new Delta version, same weights)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import build_labels
import build_vocab
import embed
import ingest_catalog
import ingest_images
import pytest
import train

from catalog2vec.lakehouse import delta_version, duckdb_connect, read_pandas, table_exists
from catalog2vec.schemas import bronze, gold, silver

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "hostile"
TABLES = [bronze.CATALOG_ITEMS, bronze.QUARANTINE, silver.CATALOG_TOKENS, silver.VOCAB, silver.ITEM_LABELS,
          silver.IMAGES, gold.ITEM_EMBEDDINGS, gold.ITEM_TAGS]
TRAIN = ['train.arch="resnet18"', "train.image_size=32", "train.batch_size=2", "train.epochs=1",
         "train.max_steps=2", "train.workers=0", "train.num_negatives=4", "train.checkpoint_every=0",
         "train.deterministic=true", 'train.model_version="hostile"']

# rejected before any field is read: the quarantine row has no item_id
PARSE_LEVEL = ("malformed_record", "invalid_utf8", "duplicate_key")

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirs[:] = []
            continue
        for name in [*files, *dirs]:
            p = Path(dirpath) / name
            if p == skip:  # the lakehouse itself is where the run writes
                continue
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns if p.is_file() else 0)
    return out


def _git_status() -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if "__pycache__" not in line]


def _run_all(src: Path, lh: Path, run_id: str) -> dict[str, Any]:
    sets = ["--set", "images.max_bytes=200000", "--set", "images.short_side=32",
            "--set", f"ingest.image_roots=[{json.dumps(str(src / 'images'))}]"]
    common = ["--lakehouse", str(lh), "--run-id", run_id, *sets]
    jobs = [
        ("ingest_catalog", "ingest_catalog-csv", ingest_catalog, [
            "--input", str(src / "catalog.csv"), "--format", "csv", "--source", "hostile_csv",
            "--image-template", "images/{item_id}.jpg"]),
        ("ingest_catalog", "ingest_catalog-json", ingest_catalog, [
            "--input", str(src / "catalog.jsonl"), "--format", "json", "--source", "hostile_json"]),
        ("ingest_catalog", "ingest_catalog-parquet", ingest_catalog, [
            "--input", str(src / "parquet"), "--format", "parquet", "--source", "hostile_parquet"]),
        ("build_vocab", "build_vocab", build_vocab, []),
        ("build_labels", "build_labels", build_labels, []),
        ("ingest_images", "ingest_images", ingest_images, []),
        ("train", "train", train, [x for s in TRAIN for x in ("--set", s)]),
        ("embed", "embed", embed, ["--model-version", "hostile"]),
    ]
    records: dict[str, Any] = {}
    for job, label, module, args in jobs:
        rc = module.main([*common, *args])
        assert rc == 0, f"{label} exited {rc}"
        path = lh / "_runs" / run_id / f"{job}.json"
        rec = json.loads(path.read_text())
        assert rec["status"] == "succeeded" and rec["exit_code"] == 0 and rec["run_id"] == run_id
        records[label] = rec
        path.rename(path.with_name(f"{label}.json"))  # ingest_catalog runs three times per run id
    return records


def test_hostile_corpus_end_to_end(spark: Any, tmp_path: Path) -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())
    src = tmp_path / "in"
    shutil.copytree(CORPUS, src)
    os.mkfifo(src / "images" / "img_fifo.jpg")  # a FIFO cannot live in git
    lh = tmp_path / "lh"
    outside, status = _snapshot(tmp_path, lh), _git_status()

    rec = _run_all(src, lh, "r1")

    # ---------------------------------------------------------------- catalog, per case
    items = read_pandas(lh, bronze.CATALOG_ITEMS).set_index("item_id")
    q = read_pandas(lh, bronze.QUARANTINE)
    qc = q[q.job == "ingest_catalog"]
    cases = expected["catalog"]
    for key, (item, outcome) in cases.items():
        if outcome == "ok":
            assert item in items.index, f"{key}: {item!r} not in catalog_items"
        elif item is not None and outcome not in (*PARSE_LEVEL, "duplicate", "missing_item_id"):
            hits = qc[qc.item_id == item]
            assert list(hits.reason) == [outcome], f"{key}: {item!r} quarantined as {list(hits.reason)}"
    for fmt in ("csv", "json", "parquet"):
        want = Counter(o for k, (_, o) in cases.items() if k.startswith(fmt + ":") and o not in ("ok", "duplicate"))
        got = Counter(qc[qc.source == f"hostile_{fmt}"].reason)
        assert got == want, fmt
        counts = rec[f"ingest_catalog-{fmt}"]["counts"]
        n_cases = sum(k.startswith(fmt + ":") for k in cases)
        n_dup = sum(k.startswith(fmt + ":") and o == "duplicate" for k, (_, o) in cases.items())
        assert counts["read"] == n_cases == counts["written"] + counts["quarantined"] + counts["duplicates"]
        assert counts["duplicates"] == n_dup and counts["quarantined"] == sum(want.values())
        assert rec[f"ingest_catalog-{fmt}"]["reasons"] == dict(sorted(want.items()))
    assert len(items) == sum(o == "ok" for _, o in cases.values())  # no row from nowhere
    assert items.loc["c4", "title"] == "Blue denim jeans"  # the row after a broken quote survived
    assert items.loc["c11", "title"] == "New red shirt" and items.loc["j23", "title"] == "New green dress"
    assert items.loc["12345", "title"] == '["Blue","shirt"]' and dict(items.loc["j26", "extra"])["nested"] == '{"a":[1,2]}'
    # control characters (a NUL) are dropped from text fields at ingest
    assert items.loc["c5", "title"] == 'Shirt 17" collar white' and items.loc["c9", "title"] == "White cotton shirt"
    # templated image paths never leave images/ and are never globbed
    assert items.loc["../../etc/passwd", "image_uri"] == str(src / "images" / "..%2F..%2Fetc%2Fpasswd.jpg")
    assert all(u is None or "://" in u or u.startswith(str(src)) for u in items.image_uri)
    # raw bytes kept losslessly: a CSV line with \xff\xfe, a JSON line with \xc3\x28
    raw = {bytes(b) for b in q.record_bytes.dropna()}
    assert b"c6,Bad \xff\xfe bytes shirt,desc,Shirts,Red,2024-01-01" in raw
    assert any(b'"Bad \xc3\x28 bytes"' in b for b in raw)

    # ---------------------------------------------------------------- images, per item
    images = read_pandas(lh, silver.IMAGES).set_index("item_id")
    qi = q[q.job == "ingest_images"].set_index("item_id")
    want_img = expected["images"]
    assert set(images.index) == {i for i, o in want_img.items() if o == "ok"}
    assert dict(qi.reason) == {i: o for i, o in want_img.items() if o != "ok"}
    assert images.loc["img_exif", "height"] > images.loc["img_exif", "width"]  # EXIF rotation applied
    ic = rec["ingest_images"]["counts"]
    assert ic["items"] == len(items) == ic["written"] + ic["unchanged"] + ic["quarantined"]

    # ---------------------------------------------------------------- text, labels, model, embeddings
    vc = rec["build_vocab"]["counts"]["counts"]
    assert vc["read"] == len(items) == vc["tokenised"] + vc["quarantined"] + vc["duplicates"]
    lc = rec["build_labels"]["counts"]["counts"]
    assert lc["read"] == lc["labelled"] + lc["quarantined"]
    assert rec["train"]["counts"]["steps"] == 2
    model_dir = lh / "models" / "hostile"
    weights = (model_dir / "model.pt").read_bytes()
    emb = read_pandas(lh, gold.ITEM_EMBEDDINGS)
    assert sorted(emb.item_id) == sorted(images.index)  # exactly one row per ingested image
    ec = rec["embed"]["counts"]["counts"]
    assert ec["images"] == len(images) == ec["skipped"] + ec["embedded"] + ec["quarantined"]

    # ---------------------------------------------------------------- every table readable without a JVM
    con = duckdb_connect(lh)
    for spec in TABLES:
        assert table_exists(lh, spec), spec.qualified_name
        (n,) = con.execute(f"select count(*) from {spec.qualified_name}").fetchone()
        assert n == len(read_pandas(lh, spec)), spec.qualified_name
    assert con.execute("select count(*) from bronze.quarantine where record_bytes is not null").fetchone()[0] == 2

    # ---------------------------------------------------------------- nothing outside the lakehouse
    assert _snapshot(tmp_path, lh) == outside
    assert _git_status() == status

    # ---------------------------------------------------------------- a second run changes nothing
    versions = {s.qualified_name: delta_version(lh, s) for s in TABLES}
    rec2 = _run_all(src, lh, "r2")
    assert {s.qualified_name: delta_version(lh, s) for s in TABLES} == versions
    assert rec2["ingest_images"]["counts"]["written"] == 0
    assert rec2["embed"]["counts"]["counts"]["embedded"] == 0
    import torch

    a = torch.load(model_dir / "model.pt", weights_only=True)
    import io

    b = torch.load(io.BytesIO(weights), weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _snapshot(tmp_path, lh) == outside and _git_status() == status
