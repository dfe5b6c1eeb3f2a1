"""Lakehouse table declarations — the single source of truth for every table's schema.

One ``TableSpec`` per table, in the modules of this package (bronze.py, silver.py, gold.py,
analysis.py, ctr.py, …; every module is discovered). Jobs write through these
(``catalog2vec.lakehouse.write_table`` enforces them) and tests check written tables against
them. Installed as ``catalog2vec.schemas``.
"""

from __future__ import annotations

import importlib
import pkgutil

from catalog2vec.lakehouse.table import TableSpec

TABLES: dict[str, TableSpec] = {}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _value in vars(_module).values():
        if isinstance(_value, TableSpec):
            if _value.qualified_name in TABLES and TABLES[_value.qualified_name] is not _value:
                raise RuntimeError(f"table {_value.qualified_name} declared twice")
            TABLES[_value.qualified_name] = _value


def get(name: str) -> TableSpec:
    """Look a table up by ``layer.name`` (e.g. ``"bronze.catalog_items"``)."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; declared: {sorted(TABLES)}") from None


__all__ = ["TABLES", "get"]
