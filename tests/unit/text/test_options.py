"""catalog2vec.text.options: ``--text-columns`` parsing, and a typo in it is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import build_vocab
import pytest

from catalog2vec.errors import InvalidInput
from catalog2vec.text.options import parse_text_columns


def test_parse_text_columns_weights_and_spaces() -> None:
    assert parse_text_columns("title, description:2,,color:3") == {"title": 1, "description": 2, "color": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title:x", "--text-columns entry 'title:x': weight must be an integer"),
        ("title:0", "--text-columns entry 'title:0': weight must be >= 1"),
        ("title,title:2", "--text-columns names 'title' twice"),
        (" , ", "--text-columns is empty"),
    ],
)
def test_parse_text_columns_refuses_with_the_entry(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_text_columns(text)
    assert str(err.value) == message


def test_text_columns_typo_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "items.csv"
    src.write_text("item_id,title\n1,red dress\n", encoding="utf-8")
    out = tmp_path / "out"
    rc = build_vocab.main(["--input", str(src), "--output", str(out), "--text-columns", "title:x"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == ["[build_vocab] error: --text-columns entry 'title:x': weight must be an integer"]
    assert "Traceback" not in err and not out.exists()  # refused before Spark read or wrote anything
