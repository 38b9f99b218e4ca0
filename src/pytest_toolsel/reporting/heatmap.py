"""reports/confusion.png: the tables of "which tool went where" drawn as heatmaps.

One row of panels per table (see where_calls_went.py), before and after side by side. Each table
names at most a few dozen labels, so the picture stays a few thousand pixels wide whatever the
number of tools a dataset declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .confusion import Confusion
from .where_calls_went import PolicyViews

DPI = 110
LABEL_CHARACTERS = 40  # of a tick label; a parallel set of long names would push the panel aside


def model_name(model: str) -> str:
    return Path(model).name or model


def can_draw() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw_heatmap(target: Path, policies: Sequence[PolicyViews], models: Sequence[tuple[str, str]]) -> None:
    """Draw the policies' tables into `target` (a PNG); `models` is (when, model) per column of panels:
    [("before", ...),] ("after", ...). Colour is the share of the row's cases, the number the count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = [view for policy in policies for view in policy.views]
    widest = max(len(view.after.columns) for view in views)
    heights = [2.2 + 0.45 * len(view.after.rows) for view in views]
    figure, axes = plt.subplots(
        len(views), len(models), squeeze=False, figsize=(len(models) * (2.5 + 0.55 * widest), sum(heights)),
        gridspec_kw={"height_ratios": heights},
    )
    try:
        for line, view in enumerate(views):
            tables = (view.before, view.after) if len(models) == 2 else (view.after,)
            for column, ((when, model), table) in enumerate(zip(models, tables)):
                _draw_panel(axes[line][column], table, f"{view.title}: {when} ({model_name(model)})")
        figure.tight_layout()
        figure.savefig(target, dpi=DPI, format="png")
    finally:
        plt.close(figure)  # pyplot keeps every open figure, and a failed one would stay


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def _draw_panel(axes, table: Confusion | None, title: str) -> None:
    from matplotlib.patches import Rectangle

    if table is None:  # the before model did not answer these cases
        axes.set_axis_off()
        axes.set_title(title + ": not evaluated", fontsize=9)
        return
    counts = [[table.count(row, column) for column in table.columns] for row in table.rows]
    shares = [[count / (sum(line) or 1) for count in line] for line in counts]
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for y, line in enumerate(counts):
        for x, count in enumerate(line):
            if count:
                axes.text(x, y, str(count), ha="center", va="center", fontsize=8,
                          color="white" if shares[y][x] > 0.6 else "black")
    for y, row in enumerate(table.rows):  # outline the right answers: the diagonal, as far as there is one
        if table.right.get(row) in table.columns:
            x = table.columns.index(table.right[row])
            axes.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#2ca02c", linewidth=1.5))
    axes.set_xticks(range(len(table.columns)), [_short(c) for c in table.columns], rotation=40, ha="right", fontsize=8)
    axes.set_yticks(range(len(table.rows)), [_short(r) for r in table.rows], fontsize=8)
    axes.set_xlabel("called (colour: share of the row's cases; green: right)", fontsize=8)
    axes.set_ylabel("expected")
    axes.set_title(title, fontsize=9)
