"""The one HTML templating layer (jinja2) for every page catalog2vec renders: the evaluation report,
the CTR report and the neighbour browser (``catalog2vec serve``).

Templates live in ``catalog2vec/resources/templates/`` (shipped in the wheel); autoescaping is on, so
values are escaped unless a template marks them ``|safe``. Filters shared by all templates:

* ``num(v, digits=3)``: a float with ``digits`` decimals, ``–`` for None, anything else as text;
* ``score(v)``: a similarity score with 4 decimals (neighbour scores differ in the 3rd-4th decimal);
* ``pct(v, digits=1)``: a fraction as a percentage;
* ``data_uri(data, mime="image/png")``: bytes inlined as a ``data:`` URI (self-contained pages).

>>> from catalog2vec.templates import render
>>> render("ctr_report.html", report=report, pictures={"calibration.png": png_bytes})
"""

from __future__ import annotations

import base64
import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

TEMPLATE_PACKAGE = "catalog2vec.resources"
TEMPLATE_DIR = "templates"


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{int(digits)}f}"
    return str(value)


def score(value: Any) -> str:
    """Cosine similarities with 4 decimals: the demo model's neighbours sit at 0.9995-0.9997."""
    return num(None if value is None else float(value), 4)


def pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value) * 100:.{int(digits)}f}%"


def data_uri(data: bytes | None, mime: str = "image/png") -> str:
    if not data:
        return ""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared ``jinja2.Environment`` (autoescape on, undefined variables are errors)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, score=score, pct=pct, data_uri=data_uri)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``resources/templates/<template>`` with ``context``."""
    return str(environment().get_template(template).render(**context))


__all__ = ["data_uri", "environment", "num", "pct", "render", "score"]
