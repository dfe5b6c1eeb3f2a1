"""build_vocab / build_labels on real local Spark + Delta: the bundled sample end to end in the
lakehouse (visual vocabulary, contiguous indices, plain-Parquet copy, CURRENT pointer, labels and
splits, idempotence, no_vocab_words quarantine), ad-hoc mode on a file of bad input, and the
Beam pipeline producing exactly Spark's vocabulary."""

from __future__ import annotations

import csv
import glob
import itertools
import json
from pathlib import Path

import build_labels
import build_vocab
import ingest_catalog
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog2vec.lakehouse import delta_version, read_table, table_exists
from catalog2vec.schemas import bronze, silver
from catalog2vec.text.vocab import current_vocab_version, read_vocab_parquet, split_for
from tests.conftest import MYNTRA_MAPPING

pytestmark = pytest.mark.spark

NOT_VISUAL = {
    "the",
    "and",
    "for",
    "with",
    "xl",
    "size",
    "cm",
    "pack",
    "buy",
    "new",
    "sale",
    "collection",
    "myntra",
}


def _vocab_rows(spark, lakehouse, version):
    df = read_table(spark, lakehouse, silver.VOCAB).where(f"vocab_version = '{version}'")
    return sorted((r["index"], r["token"], r["count"], r["doc_freq"]) for r in df.collect())


def test_lakehouse_vocab_and_labels(spark, lakehouse, examples_dir, capsys):
    assert (
        ingest_catalog.main(
            [
                "--lakehouse",
                str(lakehouse),
                "--run-id",
                "ing",
                "--input",
                str(examples_dir / "styles.csv"),
                "--format",
                "csv",
                "--mapping",
                MYNTRA_MAPPING,
                "--source",
                "myntra_sample",
            ]
        )
        == 0
    )
    lh = ["--lakehouse", str(lakehouse)]
    assert build_vocab.main([*lh, "--run-id", "v1", "--min-count", "2"]) == 0
    out = capsys.readouterr().out
    assert "items read=384 tokenised=384 quarantined=0 duplicates=0" in out
    version = current_vocab_version(str(lakehouse))
    assert f"vocab_version={version}" in out

    rows = _vocab_rows(spark, lakehouse, version)
    assert [r[0] for r in rows] == list(range(len(rows)))  # contiguous 0..K-1
    assert all(a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) for a, b in itertools.pairwise(rows))
    assert min(r[2] for r in rows) >= 2
    top = [r[1] for r in rows[:20]]
    assert {"men", "women", "white", "black", "blue", "shoes"} <= set(top), top
    assert not set(t for _, t, _, _ in rows) & NOT_VISUAL
    assert all(t.replace("-", "").isalpha() for _, t, _, _ in rows)
    # the plain Parquet copy is the same vocabulary
    copy = read_vocab_parquet(str(lakehouse / "vocab" / version / "vocab.parquet"))
    assert [(e.index, e.token, e.count, e.doc_freq) for e in copy] == rows
    manifest = json.loads((lakehouse / "vocab" / version / "manifest.json").read_text())
    assert manifest["vocab_version"] == version and manifest["counts"]["read"] == 384

    tokens = {r.item_id: r.tokens for r in read_table(spark, lakehouse, silver.CATALOG_TOKENS).collect()}
    assert len(tokens) == 384
    assert tokens["10039"] == [
        "reebok",
        "men",
        "raceon",
        "white",
        "sports",
        "shoes",
        "sports",
        "shoes",
        "white",
    ]

    assert build_labels.main([*lh, "--run-id", "l1"]) == 0
    out = capsys.readouterr().out
    assert f"vocab_version={version} items=384" in out
    labels = read_table(spark, lakehouse, silver.ITEM_LABELS).collect()
    index = {t: i for i, t, _, _ in rows}
    n_labelled = 0
    for r in labels:
        assert r.vocab_version == version
        assert r.labels == sorted({index[t] for t in tokens[r.item_id] if t in index})
        assert r.split == split_for(r.item_id, 0.8, 0.1, 0.1, "catalog2vec")
        n_labelled += 1
    q = 0
    if table_exists(lakehouse, bronze.QUARANTINE):
        q = read_table(spark, lakehouse, bronze.QUARANTINE).where("job = 'build_labels'").count()
    assert n_labelled + q == 384 and n_labelled > 370
    splits = {s: sum(r.split == s for r in labels) for s in ("train", "val", "test")}
    assert splits["train"] > 250 and splits["val"] > 15 and splits["test"] > 15

    # idempotent: same input -> same version, no new commit on tokens or vocab, same labels
    v_tokens = delta_version(lakehouse, silver.CATALOG_TOKENS)
    v_vocab = delta_version(lakehouse, silver.VOCAB)
    assert build_vocab.main([*lh, "--run-id", "v2", "--min-count", "2"]) == 0
    assert current_vocab_version(str(lakehouse)) == version
    assert delta_version(lakehouse, silver.CATALOG_TOKENS) == v_tokens
    assert delta_version(lakehouse, silver.VOCAB) == v_vocab
    assert build_labels.main([*lh, "--run-id", "l2"]) == 0
    again = read_table(spark, lakehouse, silver.ITEM_LABELS).collect()
    assert sorted((r.item_id, tuple(r.labels), r.split) for r in again) == sorted(
        (r.item_id, tuple(r.labels), r.split) for r in labels
    )

    # a tiny vocabulary becomes CURRENT; items without any of its words are quarantined
    capsys.readouterr()
    assert build_vocab.main([*lh, "--run-id", "v3", "--vocab-size", "3"]) == 0
    small = current_vocab_version(str(lakehouse))
    top3 = [r[1] for r in rows[:3]]
    assert small != version and [r[1] for r in _vocab_rows(spark, lakehouse, small)] == top3
    assert build_labels.main([*lh, "--run-id", "l3"]) == 0
    lab = read_table(spark, lakehouse, silver.ITEM_LABELS)
    n_small = lab.where(f"vocab_version = '{small}'").count()
    n_q = (
        read_table(spark, lakehouse, bronze.QUARANTINE)
        .where("job = 'build_labels' AND reason = 'no_vocab_words'")
        .where(f"detail LIKE '%{small}'")
        .count()
    )
    expect = sum(1 for t in tokens.values() if set(top3) & set(t))
    assert n_small == expect and n_q == 384 - expect and n_q > 0
    assert lab.where(f"vocab_version = '{version}'").count() == n_labelled  # old version untouched
    # the older vocabulary can still be chosen explicitly
    assert build_labels.main([*lh, "--run-id", "l4", "--vocab-version", version]) == 0
    assert build_labels.main([*lh, "--vocab-version", "vnope"]) == 2


def _write_bad_csv(path: Path) -> None:
    rows = [
        ("1", "Red Cotton Dress", "<p>Soft &amp; <b>flowy</b> linen</p>"),
        ("2", "", ""),  # empty -> no_tokens
        ("3", "😀🔥 Silk Scarf 👗", None),  # emoji
        ("4", "Красное платье", "红色连衣裙"),  # non-Latin scripts
        ("5", "Linen Shirt", "linen " * 200_000),  # 1.2 MB description: truncated, still tokenised
        ("6", "12345 2012", "678"),  # digits only -> no_tokens
        ("7", "the and of it", "was were been"),  # stop words only -> no_tokens
        ("", "Blue Jeans", "denim"),  # missing_item_id
        ("8", "Blue Jeans", "denim"),
        ("8", "Blue Jeans", "denim"),  # duplicate id
        ("9", "Red Silk Dress", "red"),
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "name", "about"])
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
        fh.write('10,"unterminated,quote\n')  # malformed: an open quote swallows the rest


def test_adhoc_mode_bad_input(spark, tmp_path, capsys):
    src = tmp_path / "bad.csv"
    _write_bad_csv(src)
    out = tmp_path / "out"
    rc = build_vocab.main(
        [
            "--input",
            str(src),
            "--format",
            "csv",
            "--id-column",
            "sku",
            "--text-columns",
            "name,about",
            "--output",
            str(out),
            "--min-count",
            "1",
            "--run-id",
            "adhoc",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    q = pq.read_table(out / "quarantine").to_pylist()
    reasons = sorted(r["reason"] for r in q)
    assert reasons.count("no_tokens") == 3 and sorted(
        r["item_id"] for r in q if r["reason"] == "no_tokens"
    ) == ["2", "6", "7"]
    assert reasons.count("missing_item_id") == 1
    assert reasons.count("malformed_record") == 1
    assert "items read=12 tokenised=6 quarantined=5 duplicates=1 truncated=1" in text  # 11 rows + 1 malformed
    toks = {r["item_id"]: r["tokens"] for r in pq.read_table(out / "catalog_tokens").to_pylist()}
    assert toks["1"] == ["red", "cotton", "dress", "soft", "flowy", "linen"]
    assert toks["3"] == ["silk", "scarf"]
    assert toks["4"] == ["красное", "платье", "红色连衣裙"]
    assert toks["5"][:2] == ["linen", "shirt"] and len(toks["5"]) == 2 + 20000 // 6 + 1  # + "li" cut
    vocab = read_vocab_parquet(str(out / "vocab.parquet"))
    assert vocab[0].token == "linen" and vocab[0].count == 20000 // 6 + 2  # id 1 + id 5 (title + description)
    assert [e.index for e in vocab] == list(range(len(vocab)))
    # missing columns / missing output are clear errors (exit 2)
    assert build_vocab.main(["--input", str(src), "--output", str(out), "--id-column", "nope"]) == 2
    assert build_vocab.main(["--input", str(src)]) == 2


def test_beam_vocabulary_equals_spark(spark, examples_dir, tmp_path):
    from pipelines import text_vocab

    common = [
        "--input",
        str(examples_dir / "styles.csv"),
        "--format",
        "csv",
        "--id-column",
        "id",
        "--text-columns",
        "productDisplayName,articleType:2,baseColour",
        "--set",  # the common flags mean the same to both engines
        "text.min_count=1",
    ]
    assert build_vocab.main([*common, "--output", str(tmp_path / "spark"), "--run-id", "x"]) == 0
    text_vocab.run([*common, "--output", str(tmp_path / "beam"), "--runner=DirectRunner", "--run-id", "x"])
    s = read_vocab_parquet(str(tmp_path / "spark" / "vocab.parquet"))
    b = read_vocab_parquet(str(tmp_path / "beam" / "vocab.parquet"))
    assert len(s) > 300
    assert s == b  # same tokens, counts, doc_freq, order, indices and vocab_version
    st = {r["item_id"]: r["tokens"] for r in pq.read_table(tmp_path / "spark" / "catalog_tokens").to_pylist()}
    bt = {}
    for f in glob.glob(str(tmp_path / "beam" / "catalog_tokens-*.parquet")):
        bt.update({r["item_id"]: r["tokens"] for r in pq.read_table(f).to_pylist()})
    assert st == bt and len(st) == 384


def test_beam_quarantine_equals_spark_on_bad_input(spark, tmp_path):
    """The bad file through both engines: the same rejects (reason, item_id, detail for the id
    rule and no_tokens), the same tokens and vocabulary; Beam's quarantine Parquet has the
    columns schemas.bronze.ADHOC_QUARANTINE_COLUMNS declares, as Spark's does."""
    from catalog2vec.schemas import bronze
    from pipelines import text_vocab

    src = tmp_path / "bad.csv"
    _write_bad_csv(src)
    common = ["--input", str(src), "--format", "csv", "--id-column", "sku", "--text-columns", "name,about",
              "--min-count", "1"]
    assert build_vocab.main([*common, "--output", str(tmp_path / "spark"), "--run-id", "x"]) == 0
    text_vocab.run([*common, "--output", str(tmp_path / "beam"), "--runner=DirectRunner", "--run-id", "x"])
    sq = pq.read_table(tmp_path / "spark" / "quarantine")
    bq = pa.concat_tables([pq.read_table(f) for f in sorted(glob.glob(str(tmp_path / "beam" / "quarantine-*.parquet")))])
    assert tuple(bq.column_names) == bronze.ADHOC_QUARANTINE_COLUMNS
    assert tuple(sq.column_names) == bronze.ADHOC_QUARANTINE_COLUMNS

    def rejects(t, with_detail):
        # Spark's native CSV reader still reads the id of a malformed row ("10"), the shared parser
        # does not: the malformed row's item_id and detail text are the one remaining difference
        return sorted((r["reason"], "" if r["reason"] == "malformed_record" else r["item_id"] or "",
                       r["detail"] if with_detail else "", r["run_id"]) for r in t.to_pylist())

    assert rejects(bq, False) == rejects(sq, False)  # same records rejected for the same reasons
    assert len(bq) == 5
    no_malformed = [t.filter(pc.not_equal(t["reason"], "malformed_record")) for t in (sq, bq)]
    assert rejects(no_malformed[1], True) == rejects(no_malformed[0], True)  # and with the same details
    st = {r["item_id"]: r["tokens"] for r in pq.read_table(tmp_path / "spark" / "catalog_tokens").to_pylist()}
    bt = {}
    for f in glob.glob(str(tmp_path / "beam" / "catalog_tokens-*.parquet")):
        bt.update({r["item_id"]: r["tokens"] for r in pq.read_table(f).to_pylist()})
    assert st == bt and len(st) == 6
    assert read_vocab_parquet(str(tmp_path / "spark" / "vocab.parquet")) == read_vocab_parquet(
        str(tmp_path / "beam" / "vocab.parquet"))
