"""The text jobs' option values that are not plain types: ``--text-columns`` (Spark job and Beam
pipeline alike), parsed here once so both engines accept and refuse the same spellings."""

from __future__ import annotations

from catalog2vec.errors import InvalidInput

__all__ = ["parse_text_columns"]


def parse_text_columns(text: str) -> dict[str, int]:
    """``"title,description:2"`` → ``{"title": 1, "description": 2}`` (``:N`` = integer weight).

    A malformed entry raises :class:`~catalog2vec.errors.InvalidInput` naming it (one line, exit 2
    in the jobs)."""
    fields: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        try:
            w = int(weight) if weight else 1
        except ValueError as exc:
            raise InvalidInput(f"--text-columns entry {part!r}: weight must be an integer") from exc
        if w < 1:
            raise InvalidInput(f"--text-columns entry {part!r}: weight must be >= 1")
        if name.strip() in fields:
            raise InvalidInput(f"--text-columns names {name.strip()!r} twice")
        fields[name.strip()] = w
    if not fields:
        raise InvalidInput("--text-columns is empty")
    return fields
