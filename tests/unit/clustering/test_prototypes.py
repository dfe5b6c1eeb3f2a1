from __future__ import annotations

import numpy as np
import pytest

from catalog2vec.clustering.kmeans import assign_to_prototypes, distances, select_prototypes


def test_distances_hand_computed() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([[1.0, 1.0]])
    np.testing.assert_allclose(distances(x, y, "cosine")[:, 0], [1 - 1 / np.sqrt(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(distances(x, y, "euclidean")[:, 0], [1.0, np.sqrt(2)], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown metric"):
        distances(x, y, "manhattan")


def test_select_prototypes_nearest_centroid_first() -> None:
    # cluster 0 around +x, cluster 1 around +y; item "c" is the most central of cluster 0
    x = np.array([[1.0, 0.3], [1.0, -0.3], [1.0, 0.0], [0.2, 1.0], [0.0, 1.0]])
    ids = ["a", "b", "c", "d", "e"]
    assignment = np.array([0, 0, 0, 1, 1])
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = select_prototypes(ids, x, assignment, centroids, m=2)
    assert model.sizes == [3, 2]
    assert model.prototypes[0] == ["c", "a"]  # a and b tie at the same distance: ties by item_id
    assert model.prototypes[1] == ["e", "d"]
    assert model.prototype_ids == ["c", "a", "e", "d"]
    assert model.prototype_cluster.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_assign_to_nearest_prototype(metric: str) -> None:
    protos = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cluster = np.array([0, 1, 1])
    new = np.array([[5.0, 0.5], [0.1, 3.0], [-2.0, 0.1]])
    assigned, dist, row = assign_to_prototypes(new, protos, cluster, metric)
    assert assigned.tolist() == [0, 1, 1]
    assert row.tolist() == [0, 1, 2]
    unit = new[0] / np.linalg.norm(new[0])
    expected = 1 - unit[0] if metric == "cosine" else np.linalg.norm(unit - protos[0])
    assert dist[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="no prototypes"):
        assign_to_prototypes(new, np.zeros((0, 2)), np.zeros(0), metric)
