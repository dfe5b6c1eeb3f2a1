"""Example downstream DAG: a team that consumes catalog2vec's embeddings schedules on the
``catalog2vec.gold.item_embeddings`` Asset instead of a clock — it runs each time the catalog2vec
DAG's ``embed`` task has written fresh embeddings.

The triggering asset event's ``extra`` names the table and the model version that ``embed`` wrote;
the one task here reads that version's rows with delta-rs (no JVM, no Spark) and reports how many
items and which embedding width it got — where a real consumer would refresh a search index or a
recommendation feature store.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, task

from catalog2vec import storage

LAKEHOUSE = os.environ.get("CATALOG2VEC_LAKEHOUSE", "lakehouse")
# the same Asset the catalog2vec DAG emits (name + URI of the deployment's gold table)
ITEM_EMBEDDINGS = Asset(
    name="catalog2vec.gold.item_embeddings",
    uri=storage.to_asset_uri(storage.join(LAKEHOUSE, "gold/item_embeddings")),
    group="catalog2vec",
)

with DAG(
    dag_id="catalog2vec_embeddings_consumer",
    description="runs whenever catalog2vec publishes fresh item embeddings",
    schedule=[ITEM_EMBEDDINGS],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["catalog2vec", "downstream"],
    doc_md=__doc__,
) as dag:

    @task(task_id="refresh_from_embeddings")
    def refresh_from_embeddings(**context: Any) -> dict[str, Any]:
        """Read the embeddings the triggering event names (table + model version)."""
        from catalog2vec.lakehouse import read_arrow

        events = context["triggering_asset_events"][ITEM_EMBEDDINGS]
        extra = dict(events[-1].extra) if events else {}
        table = str(extra.get("table") or storage.join(LAKEHOUSE, "gold/item_embeddings"))
        version = extra.get("model_version")
        root, name = storage.parent(storage.parent(table)), "gold/" + storage.basename(table)
        filters = [("model_version", "=", version)] if version else None
        rows = read_arrow(root, name, columns=["item_id", "embedding"], filters=filters)
        width = len(rows.column("embedding")[0].as_py()) if rows.num_rows else 0
        summary = {"model_version": version, "items": rows.num_rows, "dim": width}
        print(f"[refresh_from_embeddings] {summary}")
        return summary

    refresh_from_embeddings()
