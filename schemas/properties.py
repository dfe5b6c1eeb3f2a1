"""Delta table properties the declarations share (retention and change data feed).

* ``delta.logRetentionDuration``: how long commit history (time travel) is kept; log files older
  than this are cleaned up at checkpoints.
* ``delta.deletedFileRetentionDuration``: how long data files a commit removed stay on storage;
  ``maintain_tables`` VACUUMs with exactly this horizon, so time travel works within it and readers
  of an older snapshot (a long query, a lagging delta-rs reader) are never cut off.
* ``delta.enableChangeDataFeed`` on gold: downstream consumers (feature stores, the CTR model,
  BI extracts) read only what changed between versions with ``readChangeFeed`` / ``table_changes``.

``ensure_table`` applies them when it creates a table and re-applies changed values on every write.
"""

LOG_RETENTION = "interval 30 days"
DELETED_FILE_RETENTION = "interval 7 days"

BASE: dict[str, str] = {
    "delta.logRetentionDuration": LOG_RETENTION,
    "delta.deletedFileRetentionDuration": DELETED_FILE_RETENTION,
}

GOLD: dict[str, str] = {**BASE, "delta.enableChangeDataFeed": "true"}
