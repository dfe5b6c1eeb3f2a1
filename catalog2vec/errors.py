"""The project's own user-error type.

A :class:`UserError` is a problem with what the user asked for or gave (a bad argument, a missing
table, an unwritable lakehouse, an input with no readable record): the job runner prints it as
one line and exits 2. Any other exception is a bug or an environment fault and keeps its
traceback (exit 1).

The two mix-ins keep ``except ValueError`` / ``except FileNotFoundError`` callers working.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; reported as one line, exit code 2."""


class InvalidInput(UserError, ValueError):
    """An argument, configuration value or input that cannot be used."""


class MissingInput(UserError, FileNotFoundError):
    """A table, model, file or version that does not exist (yet)."""


__all__ = ["InvalidInput", "MissingInput", "UserError"]
