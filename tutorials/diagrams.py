"""Three drawing primitives the tutorial diagrams are made of (matplotlib only, no graphviz).

The chapters lay their diagrams out themselves (which box goes where, what the arrows say); this
module only knows how to draw a labelled box, a grid standing for a matrix, and an arrow, so the
layout stays readable in the chapter. Coordinates are data units of an axis whose frame is hidden.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch, Rectangle


def canvas(ax: Axes, width: float, height: float) -> Axes:
    """An empty drawing area of ``width`` x ``height`` units, equal aspect, no frame or ticks."""
    ax.set(xlim=(0, width), ylim=(0, height), aspect="equal")
    ax.axis("off")
    return ax


def box(ax: Axes, x: float, y: float, text: str, width: float = 2.0, height: float = 0.7,
        colour: str = "#dbe9f6", size: float = 9) -> tuple[float, float]:
    """A rounded box centred on (x, y) with ``text`` inside; returns its centre for arrows."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04,rounding_size=0.12", fc=colour, ec="#333333", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)
    return x, y


def grid(ax: Axes, x: float, y: float, rows: int, cols: int, cell: float = 0.25, label: str = "",
         colour: str = "#dbe9f6", shade_cols: tuple[int, ...] = (), shade_rows: tuple[int, ...] = (),
         shade: str = "#bbbbbb", col_colours: list[str] | None = None) -> tuple[float, float, float, float]:
    """A rows x cols matrix drawn as cells, top-left corner at (x, y); ``shade_cols`` and
    ``shade_rows`` are drawn grey and hatched (masked out), ``col_colours`` colours each column
    (e.g. by head). Returns the box (left, bottom, right, top)."""
    for r in range(rows):
        for c in range(cols):
            masked = c in shade_cols or r in shade_rows
            fill = shade if masked else (col_colours[c] if col_colours else colour)
            ax.add_patch(Rectangle((x + c * cell, y - (r + 1) * cell), cell, cell, fc=fill, ec="white",
                                   lw=0.6, hatch="//" if masked else None))
    if label:
        ax.text(x + cols * cell / 2, y + 0.12, label, ha="center", va="bottom", fontsize=9)
    return x, y - rows * cell, x + cols * cell, y


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str = "",
          size: float = 8, curve: float = 0.0) -> None:
    """An arrow from ``start`` to ``end``, with ``text`` beside its middle."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.1, shrinkA=2, shrinkB=2,
                                connectionstyle=f"arc3,rad={curve}"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center", va="bottom",
                fontsize=size, color="#333333")
