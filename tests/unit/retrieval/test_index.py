from __future__ import annotations

import json

import numpy as np
import pytest

from catalog2vec.models import ModelNotFoundError
from catalog2vec.models import resolve as resolve_model_version
from catalog2vec.retrieval import (
    EmbeddingIndex,
    IndexParams,
    brute_force,
    build_index,
    l2_normalize,
    recall_vs_exact,
)


def _data(n: int = 300, d: int = 24, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return [f"i{j:04d}" for j in range(n)], rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(
        0.5, 3, (n, 1)
    )


def test_l2_normalize_rows_unit_and_zero_rows_stay_zero() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])


def test_flat_index_equals_brute_force() -> None:
    ids, x = _data()
    idx = build_index(ids, x)
    q = x[:40] + 0.01
    scores, pos = idx.search(q, 10)
    bscores, bpos = brute_force(q, x, 10)
    np.testing.assert_array_equal(pos, bpos)
    np.testing.assert_allclose(scores, bscores, atol=1e-5)
    # scores are cosine similarities of the original (unnormalised) vectors
    i, j = 3, int(pos[3, 0])
    cos = q[i] @ x[j] / np.linalg.norm(q[i]) / np.linalg.norm(x[j])
    assert scores[3, 0] == pytest.approx(cos, abs=1e-5)


def test_similar_to_excludes_the_query_and_is_sorted() -> None:
    ids, x = _data(50)
    idx = build_index(ids, x)
    hits = idx.similar_to("i0007", 5)
    assert len(hits) == 5
    assert "i0007" not in [h[0] for h in hits]
    assert [h[1] for h in hits] == sorted((h[1] for h in hits), reverse=True)
    _, bpos = brute_force(x[7:8], x, 6)
    assert [h[0] for h in hits] == [ids[p] for p in bpos[0] if p != 7][:5]


def test_k_larger_than_index_pads_and_unknown_item_raises() -> None:
    ids, x = _data(3)
    idx = build_index(ids, x)
    assert len(idx.similar_to("i0000", 10)) == 2
    with pytest.raises(KeyError, match="not in the index"):
        idx.vector("nope")
    with pytest.raises(ValueError, match="dimension"):
        idx.search(np.zeros((1, 5)), 2)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall_and_cosine_scores(kind: str) -> None:
    # clustered data, like real embeddings (isotropic noise is the worst case for IVF)
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(40, 32))
    x = (centers[rng.integers(0, 40, 2000)] + 0.3 * rng.normal(size=(2000, 32))).astype(np.float32)
    ids = [f"i{j}" for j in range(2000)]
    q = x[:100]
    exact = build_index(ids, x)
    approx = build_index(ids, x, IndexParams(kind=kind, nprobe=16, ef_search=128))
    _es, ep = exact.search(q, 10)
    as_, ap = approx.search(q, 10)
    assert recall_vs_exact(ap, ep) > 0.9
    # the first hit of a query that is in the base set is itself with cosine 1
    np.testing.assert_allclose(as_[:, 0], 1.0, atol=1e-4)


def test_save_load_roundtrip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids, x = _data(100)
    idx = build_index(ids, x, IndexParams(kind="hnsw"), model_version="m1")
    idx.save(tmp_path / "ix")
    back = EmbeddingIndex.load(tmp_path / "ix")
    assert back.item_ids == ids and back.model_version == "m1" and back.params.kind == "hnsw"
    np.testing.assert_array_equal(back.search(x[:5], 4)[1], idx.search(x[:5], 4)[1])
    with pytest.raises(FileNotFoundError):
        EmbeddingIndex.load(tmp_path / "missing")


def test_recall_vs_exact_hand_case() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[1, 2, 9, 9], [5, 6, 7, 8]])
    assert recall_vs_exact(approx, exact) == pytest.approx((0.5 + 1.0) / 2)


def test_resolve_model_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="no trained model"):
        resolve_model_version(tmp_path, "latest")
    for name, created in [("old", "2026-01-01T00:00:00Z"), ("new", "2026-06-01T00:00:00Z")]:
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "model_card.json").write_text(json.dumps({"created_at": created}))
    assert resolve_model_version(tmp_path, "latest") == "new"
    assert resolve_model_version(tmp_path, None) == "new"
    assert resolve_model_version(tmp_path, "old") == "old"
    with pytest.raises(ModelNotFoundError, match="unknown model_version 'explicit'"):
        resolve_model_version(tmp_path, "explicit")  # every name is validated


@pytest.mark.parametrize("victim", ["index.faiss", "item_ids.json", "vectors.npy"])
def test_a_tampered_index_file_is_never_deserialised(tmp_path, victim: str) -> None:  # type: ignore[no-untyped-def]
    from catalog2vec.retrieval.index import IDS_FILE, INDEX_FILE, META_FILE, IndexIntegrityError

    ids, x = _data(50)
    build_index(ids, x, IndexParams(kind="flat"), model_version="m1").save(tmp_path / "ix")
    meta = json.loads((tmp_path / "ix" / META_FILE).read_text())
    assert set(meta["sha256"]) == {INDEX_FILE, IDS_FILE, "vectors.npy"} & set(meta["files"]) | {INDEX_FILE, IDS_FILE}
    path = tmp_path / "ix" / victim
    if not path.exists():
        pytest.skip(f"this index kind saves no {victim}")
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IndexIntegrityError, match="sha256 differs"):
        EmbeddingIndex.load(tmp_path / "ix")
    meta.pop("sha256")
    (tmp_path / "ix" / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(IndexIntegrityError, match="records no sha256"):
        EmbeddingIndex.load(tmp_path / "ix")


def test_ivf_nlist_follows_4_sqrt_n_capped_by_the_sample() -> None:
    from catalog2vec.retrieval.index import ivf_nlist

    assert ivf_nlist(1_000_000, 100_000) == 2564  # 4·sqrt(1M) = 4000 > 100,000 / 39
    assert ivf_nlist(10_000, 100_000) == 400
    assert ivf_nlist(10_000, 100_000, nlist=50) == 50  # given: taken as is


def test_index_in_parts_equals_one_index_and_nprobe_reaches_the_target(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from catalog2vec.retrieval.index import choose_nprobe, empty_index, publish_parts, write_part

    rng = np.random.default_rng(2)
    centers = rng.normal(size=(30, 16))
    x = (centers[rng.integers(0, 30, 3000)] + 0.3 * rng.normal(size=(3000, 16))).astype(np.float32)
    ids = [f"i{j:05d}" for j in range(3000)]
    # flat: three parts written separately, assembled in order = one exact index over all rows
    flat = empty_index("flat", 16)
    parts = [write_part(tmp_path / "flat", "b1", p, flat, ids[s:e], x[s:e])
             for p, (s, e) in enumerate([(0, 1000), (1000, 1700), (1700, 3000)])]
    publish_parts(tmp_path / "flat", flat, parts, IndexParams(kind="flat"), "m", "b1")
    loaded = EmbeddingIndex.load(tmp_path / "flat")
    assert loaded.item_ids == ids and loaded.size == 3000
    np.testing.assert_array_equal(loaded.search(x[:50], 10)[1], brute_force(x[:50], x, 10)[1])
    # ivf: trained on a sample, nprobe the fewest reaching the target on that sample
    trained = empty_index("ivf", 16, x[::3], nlist=25)
    nprobe, recall = choose_nprobe(trained, x[::3], 10, 0.95, queries=200)
    assert recall >= 0.95 and 1 <= nprobe <= 25
    parts = [write_part(tmp_path / "ivf", "b2", p, trained, ids[s:e], x[s:e])
             for p, (s, e) in enumerate([(0, 1500), (1500, 3000)])]
    publish_parts(tmp_path / "ivf", trained, parts, IndexParams(kind="ivf", nlist=25, nprobe=nprobe), "m", "b2")
    ivf = EmbeddingIndex.load(tmp_path / "ivf")
    assert ivf.item_ids == ids and ivf.params.nprobe == nprobe
    assert recall_vs_exact(ivf.search(x[:300], 10)[1], brute_force(x[:300], x, 10)[1]) >= 0.9
    np.testing.assert_allclose(ivf.vector("i01234"), l2_normalize(x[1234:1235])[0], atol=1e-6)
