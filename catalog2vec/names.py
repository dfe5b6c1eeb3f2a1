"""The one name policy: every name that becomes a path component or a SQL literal passes here.

Run ids and every model, vocabulary, feature, CTR and similarity version are *names*: they come
from a command line, a config file or a DAG trigger, and end up as ``<root>/models/<name>/``,
``<root>/_runs/<name>/`` or inside a Delta ``replaceWhere`` predicate. A name matches
:data:`NAME_PATTERN` — a letter or digit, then up to 127 letters, digits, ``.``, ``_`` or ``-`` —
so it can never be ``.``/``..``, hold a path separator, a quote, a backslash, whitespace or a
control character.

Model *references* given to jobs (``--model-version``) may also be ``latest`` or an MLflow URI
``models:/<registered model>@<alias>`` (:func:`validate_model_ref`); what they resolve to is a name.

SQL: values are never pasted into SQL text where the engine can bind them (``spark.sql(..., args=)``,
DuckDB ``?``). Where a literal is unavoidable (Delta's ``replaceWhere`` option is a string) the value
is validated as a name first, and :func:`spark_literal` / :func:`duckdb_literal` are the only escapers.

>>> validate_name("m-20261204.r18", "model_version")
'm-20261204.r18'
>>> validate_name("../../x", "run_id")
Traceback (most recent call last):
...
catalog2vec.errors.InvalidInput: invalid run_id '../../x': a name is 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from catalog2vec.errors import InvalidInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)
# models:/<registered model>@<alias> or models:/<registered model>/<version number>
MODEL_URI_PATTERN = r"^models:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9][A-Za-z0-9._-]{0,127}|/[0-9]{1,12})$"
_MODEL_URI = re.compile(MODEL_URI_PATTERN)
RULE = "a name is 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_name(value: object) -> bool:
    """Whether ``value`` is a string that follows the name policy."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def validate_name(value: object, what: str = "name") -> str:
    """``value`` unchanged if it follows the name policy, else :class:`InvalidInput` naming ``what``."""
    if not is_name(value):
        raise InvalidInput(f"invalid {what} {str(value)[:200]!r}: {RULE}")
    return str(value)


def validate_optional_name(value: str | None, what: str = "name") -> str | None:
    """``None`` / ``""`` pass (a default is derived later); anything else must be a name."""
    return None if value is None or value == "" else validate_name(value, what)


def validate_model_ref(value: object, what: str = "model_version") -> str:
    """A model reference: a version name, ``latest`` or an MLflow ``models:/`` URI."""
    if isinstance(value, str) and _MODEL_URI.fullmatch(value):
        return value
    return validate_name(value, what)


def arg_type(what: str, *, model_ref: bool = False, optional: bool = False) -> Callable[[str], str]:
    """An ``argparse`` ``type=``: a bad name becomes argparse's one-line usage error (exit 2).
    ``optional``: ``""`` passes too (argparse also converts a string default such as ``""``)."""

    def check(value: str) -> str:
        if optional and value == "":
            return value
        try:
            return validate_model_ref(value, what) if model_ref else validate_name(value, what)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = what  # argparse names the type in its message
    return check


def spark_literal(value: str) -> str:
    """A Spark SQL string literal for ``value``: Spark's parser un-escapes backslashes, so both
    ``\\`` and ``'`` are backslash-escaped (doubling ``'`` is *not* an escape in Spark SQL)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def duckdb_literal(value: str) -> str:
    """A standard-SQL (DuckDB) string literal: ``'`` doubled, backslash is an ordinary character."""
    return "'" + value.replace("'", "''") + "'"


__all__ = [
    "MODEL_URI_PATTERN",
    "NAME_PATTERN",
    "arg_type",
    "duckdb_literal",
    "is_name",
    "spark_literal",
    "validate_model_ref",
    "validate_name",
    "validate_optional_name",
]
