"""IVF-PQ: parameters from a memory budget, the index kind the neighbors job picks, and recall@10
against exact search of a PQ index re-ranked by fp16 vectors, built in parts as the executors do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catalog2vec.config import load_config
from catalog2vec.errors import InvalidInput
from catalog2vec.retrieval.index import (
    EmbeddingIndex,
    IndexParams,
    brute_force,
    choose_nprobe,
    choose_pq,
    empty_index,
    ivf_bytes_per_vector,
    ivf_nlist,
    publish_parts,
    recall_vs_exact,
    write_part,
)
from catalog2vec.retrieval.neighbors import job_index_kind

MB = 2**20


def test_pq_parameters_follow_the_memory_budget() -> None:
    n, d = 1_000_000, 128
    assert ivf_bytes_per_vector(d) == 8 + 512  # IVF-Flat: float32 vector + id
    assert choose_pq(n, d, 1000 * MB) == (64, "fp16")  # 8 + 64 + 256 = 328 B/vector = 313 MB
    assert choose_pq(n, d, 300 * MB) == (32, "fp16")  # 296 B/vector
    m, refine = choose_pq(n, d, 200 * MB)  # fp16 (>= 265 B) no longer fits: sq8 re-ranking
    assert (m, refine) == (64, "sq8") and n * ivf_bytes_per_vector(d, "ivfpq", m, refine) <= 200 * MB
    assert choose_pq(n, d, 50 * MB) == (32, "none")  # codes alone: 40 B/vector
    assert choose_pq(n, d, 0) == (32, "fp16")  # no budget: dim/4 bytes
    with pytest.raises(InvalidInput, match="index_memory_mb"):
        choose_pq(n, d, 5 * MB)  # < 9 B/vector


def test_job_picks_ivfpq_only_above_the_budget() -> None:
    cfg = load_config(None, ["retrieval.exact_max_items=1000", "retrieval.index_memory_mb=100"])
    assert job_index_kind(cfg, 1000, 128) == "flat"
    assert job_index_kind(cfg, 100_000, 128) == "ivf"  # 52 MB as IVF-Flat
    assert job_index_kind(cfg, 1_000_000, 128) == "ivfpq"  # 520 MB as IVF-Flat
    assert job_index_kind(load_config(None, ["retrieval.exact_max_items=1000"]), 10**8, 128) == "ivf"  # no budget
    assert job_index_kind(load_config(None, ["retrieval.index=ivfpq"]), 10, 128) == "ivfpq"


def _clustered(n: int, d: int, centers: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[np.arange(n) % centers] + rng.normal(scale=0.5 / np.sqrt(d), size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivfpq_in_parts_reaches_the_target_recall(tmp_path: Path) -> None:
    n, d, k = 16_000, 32, 10
    x = _clustered(n, d, centers=160)
    ids = [f"i{i:06d}" for i in range(n)]
    sample = x[::2]  # the driver's training sample
    m, refine = choose_pq(n, d, n * 30)  # 30 B/vector: IVF-Flat would need 136
    assert (m, refine) == (16, "none")  # no re-ranking vectors fit beside a code
    m, refine = choose_pq(n, d, n * 90)
    assert (m, refine) == (16, "fp16")
    params = IndexParams(kind="ivfpq", nlist=ivf_nlist(n, len(sample)), pq_m=m, refine=refine)
    trained = empty_index("ivfpq", d, sample, params.nlist, m, refine, params.k_factor)
    params.nprobe, on_sample = choose_nprobe(trained, sample, k, target=0.95, queries=300)
    assert on_sample >= 0.95 and params.nprobe <= params.nlist
    # two executor parts, merged on load (faiss cannot merge an IndexRefine itself)
    half = n // 2
    parts = [write_part(tmp_path, "b1", p, trained, ids[lo:hi], x[lo:hi])
             for p, (lo, hi) in enumerate(((0, half), (half, n)))]
    publish_parts(tmp_path, trained, parts, params, "mv", "b1")
    index = EmbeddingIndex.load(tmp_path)
    assert index.size == n and index.params.kind == "ivfpq" and index.params.refine == "fp16"
    q = x[:: n // 400][:400]
    scores, pos = index.search(q, k + 1)
    exact_scores, exact_pos = brute_force(q, x, k + 1)
    recall = recall_vs_exact(pos, exact_pos)
    print(f"ivfpq m={m} refine={refine} nlist={params.nlist} nprobe={params.nprobe}: recall@10 {recall:.4f}")
    assert recall >= 0.95
    # re-ranked scores are cosines (fp16 vectors): the top hit is the query item itself
    assert np.allclose(scores[:, 0], exact_scores[:, 0], atol=2e-3)
    assert np.array_equal(pos[:, 0], np.arange(0, n, n // 400)[:400])
    assert index.vector(ids[123]) @ x[123] > 0.999  # lookups by item_id read the re-ranking vectors
