"""Raw one-hot encoding and the synthetic generator (no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catalog2vec.ctr.encoding import FeatureSpec, is_visual, raw_onehot_parts, to_matrix
from catalog2vec.ctr.simulate import SOURCE, SimulationParams, simulate

SPEC = FeatureSpec((("device", ("mobile", "desktop")), ("site", ("a", "b", "c"))), ("tag:red", "emb_pca_0"))


def test_to_matrix_codes_unknown_as_nan() -> None:
    pdf = pd.DataFrame({"c0": ["desktop", "tv", None], "c1": ["c", "a", "zz"], "n0": [0.9, None, 0.0], "n1": [1.5, -2.0, None]})
    x = to_matrix(pdf, SPEC)
    assert x[0].tolist()[:2] == [1.0, 2.0]
    assert np.isnan(x[1, 0]) and np.isnan(x[2, 0]) and np.isnan(x[2, 1])
    assert x[0, 2] == 0.9 and np.isnan(x[1, 2]) and x[1, 3] == -2.0


def test_raw_onehot_layout() -> None:
    # layout: device [mobile, desktop, other] = 0..2, site [a, b, c, other] = 3..6, tag:red = 7, emb = 8
    assert SPEC.raw_size == 9
    x = np.array([[1.0, 2.0, 0.9, 1.5], [np.nan, np.nan, np.nan, 0.0]])
    idx, val, act = raw_onehot_parts(x, SPEC)
    assert idx[0][act[0]].tolist() == [1, 5, 7, 8] and val[0][act[0]].tolist() == [1.0, 1.0, 0.9, 1.5]
    assert idx[1][act[1]].tolist() == [2, 6] and val[1][act[1]].tolist() == [1.0, 1.0]


def test_spec_without_visual_and_roundtrip() -> None:
    assert is_visual("tag:red") and is_visual("emb_pca_3") and not is_visual("device")
    nv = SPEC.without_visual()
    assert nv.feature_names == ["device", "site"] and SPEC.has_visual and not nv.has_visual
    assert FeatureSpec.from_dict(SPEC.to_dict()) == SPEC


def _items(n: int = 60) -> pd.DataFrame:
    colours = ["Red", "Blue", "Black", "White", None]
    return pd.DataFrame(
        {"item_id": [str(i) for i in range(n)], "color": [colours[i % 5] for i in range(n)],
         "category": ["Tshirts" if i % 3 else "Shoes" for i in range(n)]}
    )


def test_simulate_is_deterministic_labelled_and_time_ordered() -> None:
    p = SimulationParams(n_impressions=5000, seed=3)
    a, b = simulate(_items(), p), simulate(_items(), p)
    pd.testing.assert_frame_equal(a, b)
    assert (a["source"] == SOURCE).all() and SOURCE == "synthetic"
    assert a["ts"].is_monotonic_increasing and a["impression_id"].is_unique
    assert set(a["click"].unique()) <= {0, 1}
    assert a["true_ctr"].mean() == pytest.approx(0.05, abs=0.002)  # bias solved for base_ctr
    with pytest.raises(ValueError):
        simulate(_items().iloc[:0], p)


def test_simulated_clicks_depend_on_colour_per_segment() -> None:
    items = _items()
    df = simulate(items, SimulationParams(n_impressions=60_000, seed=0, colour_strength=1.5))
    df = df.merge(items.rename(columns={"color": "colour"}), on="item_id")
    # true CTR varies strongly across (segment, colour) cells: colour preferences exist
    cell = df.groupby(["user_segment", df["colour"].fillna("unknown")])["true_ctr"].mean()
    assert cell.max() / cell.min() > 5
    # and the empirical clicks follow the ground truth
    assert df["click"].mean() == pytest.approx(df["true_ctr"].mean(), rel=0.05)
