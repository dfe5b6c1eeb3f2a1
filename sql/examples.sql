-- catalog2vec: example queries over the lakehouse tables, by the names `register_tables` gives
-- them in the metastore (catalog2vec_bronze | catalog2vec_silver | catalog2vec_gold) and
-- `catalog2vec.lakehouse.duckdb_connect` gives them in DuckDB. `*_latest` views hold the rows of
-- the model version models/LATEST names.
--
-- Run them in Spark SQL on the registered tables (`spark-sql` with the metastore conf that
-- `register_tables` prints), or in DuckDB (`duckdb_connect("lakehouse")`). The tests run every
-- query on the engines its `engines:` line names (tests/integration/test_metastore.py for Spark,
-- tests/integration/test_analyst_reads.py for DuckDB) and check the answers.
--
-- Format: a `-- name:` line, an `-- engines:` line, comment lines describing the query, then one
-- statement ending with `;`. Parameters are `:item_id`, `:tag`, `:model_version` and `:k`:
-- catalog2vec.lakehouse.sql_examples binds them ($item_id in DuckDB, a quoted literal in Spark SQL;
-- one quoting rule per engine, catalog2vec.names). In an interactive session replace them with
-- literals: '10039', 'floral'.
--
-- The first part asks the `*_latest` views. The second part (after the `-- pinned:` line below)
-- asks the same questions of the base tables (`gold.item_tags`, … as `duckdb_connect` and
-- `register_spark_tables` name them) for one explicit :model_version; `catalog2vec.lakehouse.gold.query`
-- fills those in. This file is the one registry: the package ships it as a resource.

-- name: model_versions
-- engines: duckdb, spark
-- Embedded model versions and their item counts (gold tables are partitioned by model_version, so
-- a query filtered on one version reads only that version's files).
SELECT model_version, count(*) AS items
FROM catalog2vec_gold.item_embeddings
GROUP BY model_version
ORDER BY model_version;

-- name: top_tags_of_item
-- engines: duckdb, spark
-- The predicted top tags of one item under the latest model, most likely first.
SELECT tag, probability, rank
FROM catalog2vec_gold.item_tags_latest
WHERE item_id = :item_id
ORDER BY rank;

-- name: items_with_top_tag
-- engines: duckdb, spark
-- Items whose most likely tag is :tag (any vocabulary word; tag_counts lists the frequent ones).
SELECT item_id, probability
FROM catalog2vec_gold.item_tags_latest
WHERE rank = 1 AND tag = :tag
ORDER BY probability DESC, item_id;

-- name: tag_counts
-- engines: duckdb, spark
-- How often each tag is an item's top tag.
SELECT tag, count(*) AS items
FROM catalog2vec_gold.item_tags_latest
WHERE rank = 1
GROUP BY tag
ORDER BY items DESC, tag;

-- name: nearest_neighbours
-- engines: duckdb
-- The 10 items most cosine-similar to :item_id: an exact scan over fixed-size FLOAT[D] vectors
-- (item_vectors_latest casts the Delta array<float> column; array_cosine_similarity needs FLOAT[D]).
SELECT o.item_id, array_cosine_similarity(o.vector, q.vector) AS score
FROM catalog2vec_gold.item_vectors_latest AS q
JOIN catalog2vec_gold.item_vectors_latest AS o ON o.item_id <> q.item_id
WHERE q.item_id = :item_id
ORDER BY score DESC, o.item_id
LIMIT 10;

-- name: nearest_neighbours_spark
-- engines: spark
-- The same in Spark SQL: the dot product with higher-order functions over the array<float>
-- column, divided by the stored L2 norms.
SELECT o.item_id,
       aggregate(zip_with(o.embedding, q.embedding, (x, y) -> x * y), 0D, (acc, v) -> acc + v)
         / (o.norm * q.norm) AS score
FROM catalog2vec_gold.item_embeddings_latest AS q
JOIN catalog2vec_gold.item_embeddings_latest AS o ON o.item_id <> q.item_id
WHERE q.item_id = :item_id
ORDER BY score DESC, o.item_id
LIMIT 10;

-- name: nearest_neighbours_hnsw
-- engines: duckdb-vss
-- Approximate nearest neighbours through a vss HNSW index. Needs the vss extension (INSTALL vss
-- downloads it from extensions.duckdb.org) and the indexed table, made by
-- catalog2vec.lakehouse.analyst.hnsw_index(con, "catalog2vec_gold.item_vectors_latest", "item_vectors_hnsw"):
--   CREATE TABLE item_vectors_hnsw AS SELECT item_id, vector FROM catalog2vec_gold.item_vectors_latest;
--   CREATE INDEX item_vectors_hnsw_hnsw ON item_vectors_hnsw USING HNSW (vector) WITH (metric = 'cosine');
-- ORDER BY array_cosine_distance(...) LIMIT k is the shape the index answers.
SELECT o.item_id, 1 - array_cosine_distance(o.vector, q.vector) AS score
FROM item_vectors_hnsw AS o,
     (SELECT vector FROM item_vectors_hnsw WHERE item_id = :item_id) AS q
WHERE o.item_id <> :item_id
ORDER BY array_cosine_distance(o.vector, q.vector)
LIMIT 10;

-- pinned: the version-pinned forms (catalog2vec.lakehouse.gold.query), one :model_version each

-- name: top_tags_of_item
-- engines: duckdb, spark
-- The top tags of :item_id under :model_version, most likely first.
SELECT tag, probability, rank FROM gold.item_tags
WHERE model_version = :model_version AND item_id = :item_id
ORDER BY rank;

-- name: items_with_top_tag
-- engines: duckdb, spark
-- Items whose most likely tag under :model_version is :tag.
SELECT item_id, probability FROM gold.item_tags
WHERE model_version = :model_version AND rank = 1 AND tag = :tag
ORDER BY probability DESC, item_id;

-- name: nearest_neighbours
-- engines: duckdb
-- The :k items most cosine-similar to :item_id under :model_version (exact scan, DuckDB lists).
SELECT o.item_id, list_cosine_similarity(o.embedding, q.embedding) AS score
FROM gold.item_embeddings q JOIN gold.item_embeddings o
  ON o.model_version = q.model_version AND o.item_id <> q.item_id
WHERE q.model_version = :model_version AND q.item_id = :item_id
ORDER BY score DESC, o.item_id LIMIT :k;

-- name: nearest_neighbours
-- engines: spark
-- The same in Spark SQL: the dot product with higher-order functions, divided by the stored norms.
SELECT o.item_id,
  aggregate(zip_with(o.embedding, q.embedding, (x, y) -> x * y), 0D, (acc, v) -> acc + v)
    / (o.norm * q.norm) AS score
FROM gold.item_embeddings q JOIN gold.item_embeddings o
  ON o.model_version = q.model_version AND o.item_id <> q.item_id
WHERE q.model_version = :model_version AND q.item_id = :item_id
ORDER BY score DESC, o.item_id LIMIT :k;

-- name: tag_counts
-- engines: duckdb, spark
-- How often each tag is an item's top tag under :model_version.
SELECT tag, count(*) AS items FROM gold.item_tags
WHERE model_version = :model_version AND rank = 1
GROUP BY tag ORDER BY items DESC, tag;
