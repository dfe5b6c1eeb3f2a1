# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring the item embeddings
#
# Reads the gold tables written by `spark-submit jobs/embed.py` with **no JVM** (delta-rs + DuckDB):
#
# 1. the most frequent top tags per catalog category,
# 2. the nearest neighbours of one item (cosine similarity of the embeddings) as an image grid,
# 3. a 2-D PCA projection of the embeddings coloured by category.
#
# Parameters (environment variables): `CATALOG2VEC_LAKEHOUSE` (default `lakehouse`),
# `CATALOG2VEC_OUT` (where the PNGs go; default `<lakehouse>/reports/explore_embeddings`),
# `CATALOG2VEC_MODEL_VERSION` (default: the latest embedded one), `CATALOG2VEC_ITEM` (default: the
# first item of the most common category).

# %%
import json
import os
from pathlib import Path

# no backend is forced: Jupyter shows the figures inline; run as a script without a display,
# matplotlib falls back to Agg by itself (the figures are also saved under OUT)
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.decomposition import PCA

from catalog2vec.lakehouse import duckdb_connect, read_arrow, table_exists
from catalog2vec.lakehouse import gold as g

LAKEHOUSE = os.environ.get("CATALOG2VEC_LAKEHOUSE", "lakehouse")
OUT = Path(os.environ.get("CATALOG2VEC_OUT", os.path.join(LAKEHOUSE, "reports", "explore_embeddings")))
OUT.mkdir(parents=True, exist_ok=True)
MODEL_VERSION = os.environ.get("CATALOG2VEC_MODEL_VERSION") or g.latest_embedded_model_version(LAKEHOUSE)
print(f"lakehouse={LAKEHOUSE} model_version={MODEL_VERSION} out={OUT}")

# %% [markdown]
# ## The tables in DuckDB
# Every declared table that exists is a DuckDB view named `layer.table`.

# %%
con = duckdb_connect(LAKEHOUSE)
MV = "'" + MODEL_VERSION.replace("'", "''") + "'"  # SQL literal
has_catalog = table_exists(LAKEHOUSE, "bronze.catalog_items")
items = con.sql(
    "SELECT e.item_id, e.norm, "
    + ("coalesce(c.category, 'unknown')" if has_catalog else "'unknown'")
    + " AS category FROM gold.item_embeddings e "
    + ("LEFT JOIN bronze.catalog_items c USING (item_id) " if has_catalog else "")
    + f"WHERE e.model_version = {MV} ORDER BY e.item_id"
).df()
print(f"{len(items)} items embedded; {items.category.nunique()} categories")
items.category.value_counts().head(10)

# %% [markdown]
# ## 1. Top tags per category
# For the most common categories: how often each tag is an item's most likely tag (rank 1).

# %%
top1 = con.sql(
    "SELECT t.item_id, t.tag, t.probability FROM gold.item_tags t "
    f"WHERE t.model_version = {MV} AND t.rank = 1"
).df().merge(items[["item_id", "category"]], on="item_id")
cat_counts = items.category.value_counts()
categories = sorted(cat_counts.index, key=lambda c: (-cat_counts[c], c))[:6]
fig, axes = plt.subplots(2, 3, figsize=(14, 7))
top_tags_per_category = {}
for ax, cat in zip(axes.ravel(), categories, strict=False):
    all_counts = top1[top1.category == cat].tag.value_counts()
    top_tags_per_category[cat] = {str(k): int(v) for k, v in all_counts.items()}
    counts = all_counts.head(8)
    ax.barh(counts.index[::-1], counts.values[::-1], color="tab:blue")
    ax.set_title(f"{cat} ({int((items.category == cat).sum())} items)")
    ax.set_xlabel("items with this top tag")
for ax in axes.ravel()[len(categories):]:
    ax.axis("off")
fig.suptitle(f"Top-1 tags per category — model {MODEL_VERSION}")
fig.tight_layout()
fig.savefig(OUT / "top_tags_per_category.png", dpi=80)

# %% [markdown]
# ## 2. Nearest neighbours of one item
# Cosine similarity of the L2-normalised embeddings (exact, numpy); the same query in DuckDB is
# `gold.query("nearest_neighbours", "duckdb", ...)`.

# %%
ITEM = os.environ.get("CATALOG2VEC_ITEM") or str(items[items.category == categories[0]].item_id.iloc[0])
K = 8
neighbours = g.nearest_neighbours(LAKEHOUSE, ITEM, MODEL_VERSION, k=K)
sql_neighbours = con.sql(g.query("nearest_neighbours", "duckdb", MODEL_VERSION, item_id=ITEM, k=K)).df()
assert sql_neighbours.item_id.tolist() == neighbours.item_id.tolist(), "numpy and DuckDB disagree"
print("top tags of", ITEM)
print(g.top_tags(LAKEHOUSE, ITEM, MODEL_VERSION).head(5).to_string(index=False))
neighbours.merge(items[["item_id", "category"]], on="item_id")

# %%
import io  # noqa: E402

from PIL import Image  # noqa: E402

wanted = [ITEM, *neighbours.item_id.tolist()]
images = {}
if table_exists(LAKEHOUSE, "silver.images"):
    import pyarrow.compute as pc

    imgs = read_arrow(LAKEHOUSE, "silver.images", columns=["item_id", "image"])
    imgs = imgs.filter(pc.is_in(imgs.column("item_id"), value_set=__import__("pyarrow").array(wanted)))
    images = {r["item_id"]: r["image"] for r in imgs.to_pylist()}
cat_of = dict(zip(items.item_id, items.category, strict=True))
score_of = dict(zip(neighbours.item_id, neighbours.score, strict=True))
fig, axes = plt.subplots(1, len(wanted), figsize=(2.2 * len(wanted), 2.9))
for ax, item in zip(axes, wanted, strict=True):
    if item in images:
        ax.imshow(Image.open(io.BytesIO(images[item])).convert("RGB"))
    label = "query" if item == ITEM else f"cos {score_of[item]:.3f}"
    ax.set_title(f"{item}\n{cat_of.get(item, '?')}\n{label}", fontsize=8)
    ax.axis("off")
fig.suptitle(f"Nearest neighbours of item {ITEM}")
fig.tight_layout()
fig.savefig(OUT / "nearest_neighbours.png", dpi=80)

# %% [markdown]
# ## 3. 2-D projection coloured by category

# %%
ids, mat = g.embedding_matrix(LAKEHOUSE, MODEL_VERSION)
xy = PCA(n_components=2, random_state=0).fit_transform(mat)
proj = pd.DataFrame({"item_id": ids, "x": xy[:, 0], "y": xy[:, 1]}).merge(items[["item_id", "category"]], on="item_id")
shown = items.category.value_counts().index[:10].tolist()
fig, ax = plt.subplots(figsize=(9, 7))
for i, cat in enumerate(shown):
    sel = proj[proj.category == cat]
    ax.scatter(sel.x, sel.y, s=14, label=f"{cat} ({len(sel)})", color=plt.cm.tab10(i))
rest = proj[~proj.category.isin(shown)]
ax.scatter(rest.x, rest.y, s=8, color="lightgrey", label=f"other ({len(rest)})")
ax.legend(fontsize=8, loc="best")
ax.set_title(f"PCA of the L2-normalised embeddings — model {MODEL_VERSION}")
fig.tight_layout()
fig.savefig(OUT / "projection_pca.png", dpi=80)

# %% [markdown]
# ## Summary (also written as JSON for scripts and tests)

# %%
summary = {
    "model_version": MODEL_VERSION,
    "items": len(items),
    "query_item": ITEM,
    "neighbours": neighbours.item_id.tolist(),
    "neighbour_scores": [round(float(s), 6) for s in neighbours.score],
    "top_tags_per_category": top_tags_per_category,
    "pictures": sorted(p.name for p in OUT.glob("*.png")),
}
(OUT / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps({k: v for k, v in summary.items() if k != "top_tags_per_category"}, indent=2))
print(f"pictures in {OUT.resolve()}")
