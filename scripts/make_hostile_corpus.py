"""Generate the hostile corpus under tests/data/hostile/ (deterministic; re-run to refresh).

    .venv/bin/python scripts/make_hostile_corpus.py [--out tests/data/hostile]

What crawls really deliver, one kind per record or image, each with the outcome the pipeline
must give it (``expected.json``: ``ok`` = a bronze/catalog_items row, ``duplicate`` = an older
version of an item, else the quarantine reason):

* ``catalog.jsonl``  JSON-lines records (malformed, truncated, invalid UTF-8, duplicate keys, …)
  with ``image_uri`` values (relative, escaping, absolute, http, s3);
* ``catalog.csv``    CSV records (wrong field counts, a broken quote before a good row, CRLF, BOM,
  NUL, multi-line fields, …); ingested with ``--image-template 'images/{item_id}.jpg'``, its ids
  name the image kinds (zero bytes, truncated JPEG, CMYK, 16-bit, EXIF-rotated, bomb, SVG, …);
* ``parquet/``       typed Parquet (binary titles that are not UTF-8, nested columns, repeated
  column names, a file that is not Parquet at all);
* ``images/``        the image files.

A FIFO (``images/img_fifo.jpg``) cannot live in git: the test creates it in its copy.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORDS = ["red", "blue", "black", "white", "green", "cotton", "linen", "denim", "wool", "leather"]
GARMENTS = ["shirt", "dress", "jeans", "jacket", "skirt", "sweater", "belt", "shoes"]


def title(i: int) -> str:
    return f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 3 + 1) % len(WORDS)]} {GARMENTS[i % len(GARMENTS)]}"


# ------------------------------------------------------------------ images
def _photo(w: int, h: int, seed: int, mode: str = "RGB") -> Any:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), np.full_like(x, 40 + seed % 200)], -1)
    arr = (arr + rng.integers(0, 20, arr.shape)).clip(0, 255).astype("uint8")
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


def _save(img: Any, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_images(d: Path) -> dict[str, str]:
    """Write images/<id>.jpg files; returns item id -> expected ingest_images outcome."""
    import numpy as np
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}

    def put(item: str, data: bytes, outcome: str) -> None:
        (d / f"{item}.jpg").write_bytes(data)
        out[item] = outcome

    for i in range(12):  # plain good photos: enough labelled items to train on
        put(f"good{i:02d}", _save(_photo(64 + 8 * i, 48 + 4 * i, i), "JPEG", quality=85), "ok")
    put("img_zero", b"", "image_empty")
    full = _save(_photo(96, 96, 99), "JPEG", quality=90)
    put("img_truncated", full[: len(full) // 2], "image_truncated")
    put("img_text", b"<html><body>404 Not Found</body></html>\n", "not_an_image")
    rgba = _photo(60, 40, 3, "RGBA")
    a = np.asarray(rgba).copy()
    a[:, 30:, 3] = 0
    put("img_alpha", _save(Image.fromarray(a, "RGBA"), "PNG"), "ok")  # a PNG named .jpg
    put("img_palette", _save(_photo(50, 50, 4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"), "ok")
    frames = [_photo(40, 40, s).convert("P", palette=Image.Palette.ADAPTIVE) for s in (5, 6, 7)]
    put("img_gif", _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0), "ok")
    put("img_cmyk", _save(_photo(48, 64, 8, "CMYK"), "JPEG"), "ok")
    g16 = Image.fromarray((np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).astype(np.uint16), "I;16")
    put("img_16bit", _save(g16, "PNG"), "ok")
    put("img_gray", _save(_photo(40, 40, 9, "L"), "JPEG"), "ok")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    put("img_exif", _save(_photo(80, 40, 10), "JPEG", exif=exif.tobytes()), "ok")
    put("img_1x1", _save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "ok")
    put("img_bomb", _save(Image.new("1", (9000, 5000), 0), "PNG", optimize=True), "decompression_bomb")
    put("img_webp", _save(_photo(50, 40, 11), "WEBP"), "ok")
    put("img_svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        "not_an_image")
    noise = Image.fromarray(np.random.default_rng(12).integers(0, 255, (330, 330, 3), dtype=np.uint8), "RGB")
    put("img_big", _save(noise, "PNG"), "image_too_large")  # over images.max_bytes=200000 in the test
    (d / "img_dir.jpg").mkdir(exist_ok=True)  # a directory named like an image
    (d / "img_dir.jpg" / ".keep").write_text("a directory, not an image\n")
    out["img_dir"] = "image_missing"
    out["img_missing"] = "image_missing"  # no file at all
    out["img_fifo"] = "image_path_invalid"  # created by the test (a FIFO cannot be committed)
    # files that a glob or a path-like id would wrongly pick up
    (d / "a.jpg").write_bytes(_save(_photo(30, 30, 13), "JPEG"))
    out["[ab]"] = "image_missing"  # no glob: images/[ab].jpg is a literal name
    out["*"] = "image_missing"
    out["../../etc/passwd"] = "image_missing"  # escaped to images/..%2F..%2Fetc%2Fpasswd.jpg
    out["é" * 200] = "image_path_invalid"  # 400 bytes: too long for a file name (ENAMETOOLONG)
    return out


# ------------------------------------------------------------------ CSV
def make_csv(path: Path, images: dict[str, str]) -> dict[str, str]:
    header = b"\xef\xbb\xbfitem_id,title,description,category,color,crawled_at\r\n"  # BOM + CRLF header
    rows: list[bytes] = []
    expected: dict[str, str] = {}

    def row(key: str, line: bytes, outcome: str) -> None:
        rows.append(line)
        first = line.split(b",", 1)[0].strip(b'"')
        try:
            item = first.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            item = None
        expected[key] = [item, outcome]

    for i, item in enumerate(images):
        t = title(i)
        q = item.replace('"', '""')
        row(f"csv:{item}", f'"{q}",{t},a {t.lower()} in the hostile corpus,{GARMENTS[i % 8]},{WORDS[i % 10]},'
            f"2024-03-01T10:00:00\n".encode(), "ok")
    row("csv:too_many_fields", b"c1,Red shirt,desc,Shirts,Red,2024-01-01,EXTRA\n", "malformed_record")
    row("csv:too_few_fields", b"c2,short\n", "malformed_record")
    row("csv:unbalanced_quote", b'c3,"Broken quote red shirt,desc,Shirts,Red,2024-01-01\n', "malformed_record")
    row("csv:row_after_broken_quote", b"c4,Blue denim jeans,the row after a broken quote,Jeans,Blue,2024-01-01\n", "ok")
    row("csv:stray_quote_mid_field", b'c5,Shirt 17" collar white,desc,Shirts,White,2024-01-01\n', "ok")
    row("csv:invalid_utf8", b"c6,Bad \xff\xfe bytes shirt,desc,Shirts,Red,2024-01-01\n", "invalid_utf8")
    row("csv:crlf", b"c7,Green linen dress,crlf line end,Dresses,Green,2024-01-01\r\n", "ok")
    row("csv:multiline_field", b'c8,Black wool jacket,"two\nlines, quoted",Jackets,Black,2024-01-01\n', "ok")
    row("csv:nul_in_title", b"c9,White cotton\x00 shirt,nul byte in title,Shirts,White,2024-01-01\n", "ok")
    row("csv:empty_id", b",No id red shirt,desc,Shirts,Red,2024-01-01\n", "missing_item_id")
    row("csv:tab_id", b"\t\t,Tab id red shirt,desc,Shirts,Red,2024-01-01\n", "missing_item_id")
    row("csv:tab_title", b"c10,\t\t,\t,Shirts,Red,2024-01-01\n", "no_text")
    row("csv:dup_older", b"c11,Old red shirt,older crawl,Shirts,Red,2023-01-01T00:00:00\n", "duplicate")
    row("csv:dup_newer", b"c11,New red shirt,newer crawl,Shirts,Red,2025-01-01T00:00:00\n", "ok")
    row("csv:bad_timestamp", b"c12,Red shirt,desc,Shirts,Red,last tuesday\n", "invalid_timestamp")
    row("csv:huge_field", b"c13,Red shirt," + b"long " * 14000 + b",Shirts,Red,2024-01-01\n", "field_too_large")
    row("csv:control_in_id", "c14\u202eevil,Red shirt,desc,Shirts,Red,2024-01-01\n".encode(), "invalid_id")
    row("csv:id_too_long", b"x" * 300 + b",Red shirt,desc,Shirts,Red,2024-01-01\n", "invalid_id")
    rows.append(b"\n")  # a blank line is not a record
    path.write_bytes(header + b"".join(rows))
    return expected


# ------------------------------------------------------------------ JSON lines
def make_jsonl(path: Path) -> dict[str, str]:
    lines: list[bytes] = []
    expected: dict[str, str] = {}

    def line(key: str, raw: bytes | str, outcome: str) -> None:
        b = raw.encode() if isinstance(raw, str) else raw
        lines.append(b)
        try:
            item = json.loads(b.decode("utf-8-sig")).get("item_id")
        except Exception:
            item = None
        expected[key] = [None if item is None else str(item).strip(), outcome]

    def obj(**kw: Any) -> str:
        return json.dumps(kw, ensure_ascii=False)

    line("json:bom_first_line", b"\xef\xbb\xbf" + obj(item_id="j01", title="Red cotton shirt",
                                                      image_uri="images/good00.jpg").encode(), "ok")
    line("json:malformed", '{"item_id": "j02", "title": "broken', "malformed_record")
    line("json:truncated", '{"item_id": "j03", "title": "Blue dress", "descr', "malformed_record")
    line("json:invalid_utf8", b'{"item_id": "j04", "title": "Bad \xc3\x28 bytes"}', "invalid_utf8")
    line("json:duplicate_key", '{"item_id": "j05", "title": "a", "title": "b"}', "duplicate_key")
    line("json:single_quotes", "{'item_id': 'j06', 'title': 'pseudo json'}", "malformed_record")
    line("json:trailing_garbage", '{"item_id": "j07", "title": "Red shirt"} trailing', "malformed_record")
    line("json:top_level_array", '[{"item_id": "j08a", "title": "x"}, {"item_id": "j08b", "title": "y"}]',
         "malformed_record")
    line("json:scalar", '"just a string"', "malformed_record")
    line("json:nan", '{"item_id": "j10", "title": "Red shirt", "price": NaN}', "malformed_record")
    line("json:lone_surrogate", '{"item_id": "j11", "title": "\\ud800 shirt"}', "invalid_utf8")
    line("json:null_id", obj(item_id=None, title="Red shirt"), "missing_item_id")
    line("json:empty_id", obj(item_id="", title="Red shirt"), "missing_item_id")
    line("json:whitespace_id", obj(item_id="\t \u00a0\u200b", title="Red shirt"), "missing_item_id")
    line("json:whitespace_text", obj(item_id="j15", title="\t\t", description=" \u200b\n"), "no_text")
    line("json:wrong_types", '{"item_id": 12345, "title": ["Blue", "shirt"], "description": {"a": 1}, "price": 9.90}',
         "ok")
    line("json:huge_field", obj(item_id="j17", title="Red shirt", description="x" * 70000), "field_too_large")
    line("json:nul_in_id", obj(item_id="j18\u0000x", title="Red shirt"), "invalid_id")
    line("json:id_too_long", obj(item_id="j" * 300, title="Red shirt"), "invalid_id")
    line("json:path_like_id", obj(item_id="../j20", title="Black leather belt",
                                  image_uri="images/good01.jpg"), "ok")
    line("json:image_escapes_input", obj(item_id="j21", title="Red shirt", image_uri="../../../../etc/passwd"),
         "image_path_invalid")
    line("json:image_absolute_outside", obj(item_id="j22", title="Red shirt", image_uri="/etc/hostname"),
         "image_path_invalid")
    line("json:dup_older", obj(item_id="j23", title="Old green dress", crawled_at="2024-01-01T00:00:00Z"),
         "duplicate")
    line("json:dup_newer", obj(item_id="j23", title="New green dress", crawled_at="2024-06-01T00:00:00+02:00",
                               image_uri="images/good02.jpg"), "ok")
    line("json:bad_timestamp", obj(item_id="j24", title="Red shirt", crawled_at="yesterday"), "invalid_timestamp")
    line("json:timestamp_out_of_range", obj(item_id="j25", title="Red shirt", crawled_at="0001-01-01T00:00:00"),
         "invalid_timestamp")
    line("json:unknown_columns", obj(item_id="j26", title="White linen shirt", colour_hex="#fff",
                                     nested={"a": [1, 2]}, image_uri="images/good03.jpg"), "ok")
    line("json:crlf", obj(item_id="j27", title="Blue wool sweater", image_uri="images/good04.jpg") + "\r", "ok")
    line("json:deep_nesting", '{"item_id": "j28", "title": "x", "n": ' + "[" * 5000 + "]" * 5000 + "}",
         "malformed_record")
    line("json:missing_columns", obj(item_id="j29", description="only a description, blue denim"), "ok")
    line("json:glob_id", obj(item_id="j30*", title="Star shirt red", image_uri="images/*.jpg"), "ok")
    # URIs off the image allow-list (no ingest.image_schemes for a local lakehouse): refused at ingest
    line("json:http_image", obj(item_id="j31", title="Red cotton dress", image_uri="http://127.0.0.1:9/x.jpg"),
         "image_path_invalid")
    line("json:s3_image", obj(item_id="j32", title="Blue cotton dress",
                              image_uri="s3://catalog2vec-no-such-bucket/x.jpg"), "image_path_invalid")
    line("json:emoji_id", obj(item_id="👗-42", title="Green wool skirt", image_uri="images/good05.jpg"), "ok")
    line("json:relative_image", obj(item_id="j34", title="Black denim jacket", image_uri="images/good06.jpg"), "ok")
    line("json:raw_control_char", b'{"item_id": "j35", "title": "tab\tinside"}', "malformed_record")
    lines.append(b"")  # blank line: not a record
    lines.append(b"   ")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


# ------------------------------------------------------------------ Parquet
def make_parquet(d: Path) -> dict[str, str]:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    d.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "item_id": pa.array(["p1", "p2", None, "p4", "p5"]),
        "title": pa.array([b"Grey wool sweater", b"Bad \xff title", b"No id shirt", b"Red linen dress",
                           b"White cotton shirt"], pa.binary()),
        "price": pa.array([19.9, 5.0, 1.0, None, 7.25]),
        "tags": pa.array([["a", "b"], [], None, ["x"], ["y"]]),
        "meta": pa.array([{"k": 1}, {"k": 2}, {"k": 3}, None, {"k": 5}]),
        "crawled_at": pa.array([dt.datetime(2024, 5, 1)] * 5, pa.timestamp("us")),
        "image_uri": pa.array(["../images/good07.jpg", None, None, "../images/good08.jpg", "../images/good09.jpg"]),
    })
    pq.write_table(table, d / "catalog.parquet")
    expected = {"parquet:ok_typed": ["p1", "ok"], "parquet:binary_not_utf8": ["p2", "invalid_utf8"],
                "parquet:null_id": [None, "missing_item_id"], "parquet:null_values": ["p4", "ok"],
                "parquet:nested": ["p5", "ok"]}
    (d / "not_parquet.parquet").write_bytes(b"PAR1 this is not a parquet file")
    expected["parquet:not_parquet_file"] = [None, "malformed_record"]
    dup = pa.Table.from_arrays([pa.array(["p9"]), pa.array(["Dup col"]), pa.array(["again"])],
                               names=["item_id", "title", "title"])
    pq.write_table(dup, d / "dup_columns.parquet")
    expected["parquet:repeated_column"] = ["p9", "duplicate_key"]
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "tests" / "data" / "hostile"))
    args = parser.parse_args(argv)
    random.seed(0)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    images = make_images(out / "images")
    catalog = {**make_csv(out / "catalog.csv", images), **make_jsonl(out / "catalog.jsonl"),
               **make_parquet(out / "parquet")}
    # the image outcome of every item that reaches bronze/catalog_items
    by_json_uri = {"j01": "ok", "../j20": "ok", "j23": "ok", "j26": "ok", "j27": "ok", "👗-42": "ok", "j34": "ok",
                   "p1": "ok", "p4": "ok", "p5": "ok"}
    item_images = {}
    for item, outcome in (v for v in catalog.values()):
        if outcome != "ok":
            continue
        item_images[item] = images.get(item, by_json_uri.get(item, "image_missing"))
    expected = {"catalog": catalog, "image_kinds": images, "images": item_images}
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    n_files = sum(1 for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"hostile corpus: {len(catalog)} catalog record kinds, {len(images)} image kinds, "
          f"{n_files} files, {size / 1024:.0f} KiB -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
