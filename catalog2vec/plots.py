"""Headless matplotlib for the report pictures: one place that picks the Agg backend and turns a
figure into PNG bytes (the caller writes them through ``storage``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display on executors or CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (tight layout); the figure is closed."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
