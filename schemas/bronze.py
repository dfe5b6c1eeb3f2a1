"""Bronze: data as received, plus where it came from and which run ingested it."""

from catalog2vec.lakehouse.table import Column as C
from catalog2vec.lakehouse.table import TableSpec
from catalog2vec.schemas import properties

CATALOG_ITEMS = TableSpec(
    layer="bronze",
    properties=properties.BASE,
    name="catalog_items",
    doc="Crawled catalog rows, canonical columns, deduplicated on item_id (latest crawled_at wins).",
    key=("item_id",),
    columns=(
        C("item_id", "string", False, "shop item identifier"),
        C("title", "string", True, "crawled product title"),
        C("description", "string", True, "crawled description text"),
        C("category", "string", True, "category / article type"),
        C("brand", "string", True),
        C("color", "string", True),
        C("gender", "string", True),
        C("image_uri", "string", True, "absolute path or URI of the product image"),
        C("url", "string", True, "product page URL"),
        C("source", "string", False, "name of the crawl / feed this row came from"),
        C("crawled_at", "timestamp", True, "when the page was crawled (ingest time if unknown)"),
        C("extra", "map<string,string>", True, "unmapped source columns, kept verbatim"),
        C("record_sha256", "string", False, "sha256 of the canonical row content (change detection)"),
        C("run_id", "string", False, "ingest run that last wrote the row"),
        C("ingested_at", "timestamp", False),
    ),
)

QUARANTINE = TableSpec(
    layer="bronze",
    properties=properties.BASE,
    name="quarantine",
    doc=(
        "Every rejected input record with a reason; nothing is dropped silently. The DESIGN key "
        "(source, record) is realised as (job, source, record_sha256) so huge records key cheaply."
    ),
    key=("job", "source", "record_sha256"),
    columns=(
        C("job", "string", False, "job that rejected the record (ingest_catalog, build_labels, …)"),
        C("source", "string", False, "input source (file / feed / upstream table)"),
        C("record", "string", True, "the raw record as valid UTF-8 text; bytes that are not UTF-8 as \\xNN escapes "
          "(truncated to 1 MiB)"),
        C("record_bytes", "binary", True, "the raw bytes, losslessly, when they are not valid UTF-8 (else null)"),
        C("record_sha256", "string", False, "sha256 of the raw bytes (record_bytes, else record as UTF-8)"),
        C("item_id", "string", True, "item id when one could be read"),
        C("reason", "string", False, "a code from catalog2vec.quality.Reason"),
        C("detail", "string", True, "human-readable detail"),
        C("run_id", "string", False),
        C("quarantined_at", "timestamp", False),
    ),
)

#: the quarantine Parquet an ad-hoc build_vocab run (no lakehouse) writes, Spark and Beam alike:
#: these bronze/quarantine columns, in this order
ADHOC_QUARANTINE_COLUMNS = ("source", "record", "item_id", "reason", "detail", "run_id")

IMPRESSIONS = TableSpec(
    layer="bronze",
    properties=properties.BASE,
    name="impressions",
    doc="Ad / recommendation impressions with click labels (real logs or the labelled synthetic generator).",
    key=("impression_id",),
    columns=(
        C("impression_id", "string", False),
        C("ts", "timestamp", False, "impression time (orders the train/validation/test split)"),
        C("item_id", "string", True, "catalog item shown, where there is one"),
        C("features", "map<string,string>", True, "context/user categorical fields"),
        C("click", "int", False, "1 = clicked"),
        C("source", "string", False, "log name; 'synthetic' for catalog2vec.ctr.simulate"),
        C("true_ctr", "double", True, "ground-truth click probability: synthetic impressions only, else null"),
        C("run_id", "string", False),
    ),
)
