"""Which tool went where: a confusion table per policy, before and after, as Markdown and as a heatmap.

Rows are what a case expects (a tool, `none`, or a parallel set such as `get_stock_price, get_weather`);
columns are what the model called, with `none` for no call and `malformed` for an answer that could not
be fully parsed (then what was called is not known). Before and after share rows and columns, so the
two read side by side.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tabulate import tabulate

from ..cases.suite import NO_TOOL
from ..verdicts.evaluation import Outcome, RunResult

MALFORMED = "malformed"
PNG_FILE = "confusion.png"


def expected_label(outcome: Outcome) -> str:
    return outcome.case.expect_label


def called_label(outcome: Outcome) -> str:
    """The called tools as a label in the expected labels' form (sorted, comma-joined)."""
    if outcome.parsed.malformed:
        return MALFORMED
    return ", ".join(sorted(set(outcome.parsed.called))) or NO_TOOL


@dataclass(frozen=True)
class Confusion:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: Counter  # (row, column) -> cases

    def count(self, row: str, column: str) -> int:
        return self.counts[(row, column)]

    def as_dict(self) -> dict:
        return {
            "rows": list(self.rows),
            "columns": list(self.columns),
            "counts": [[self.count(row, column) for column in self.columns] for row in self.rows],
        }


def label_order(declared: Sequence[str]):
    """Sort key: single tools in declaration order, then parallel sets, then `none`, then `malformed`,
    so that the expected labels' cells run down the diagonal."""
    position = {name: index for index, name in enumerate(declared)}

    def key(label: str) -> tuple:
        if label in (NO_TOOL, MALFORMED):
            return (1, label != NO_TOOL)
        names = label.split(", ")
        return (0, len(names), sorted(position.get(name, len(position)) for name in names), label)

    return key


def shared_confusions(runs: Sequence[Sequence[Outcome]]) -> list[Confusion]:
    """One confusion per run of the same cases, over the same rows and columns.

    Columns hold every declared tool even when nothing called it: a tool that is never chosen is
    worth seeing. `none` and `malformed` are always there.
    """
    outcomes = [outcome for run in runs for outcome in run]
    declared = list(dict.fromkeys(name for outcome in outcomes for name in outcome.suite.tool_names))
    key = label_order(declared)
    rows = sorted({expected_label(o) for o in outcomes}, key=key)
    columns = sorted({*declared, *rows, *(called_label(o) for o in outcomes), NO_TOOL, MALFORMED}, key=key)
    return [
        Confusion(tuple(rows), tuple(columns), Counter((expected_label(o), called_label(o)) for o in run))
        for run in runs
    ]


def by_policy(run: RunResult | None) -> dict[str, list[Outcome]]:
    return run.grouped(lambda outcome: outcome.suite.policy) if run else {}


def policy_confusions(candidate: RunResult, baseline: RunResult | None) -> dict[str, tuple[Confusion | None, Confusion]]:
    """policy -> (before or None, after)."""
    after, before = by_policy(candidate), by_policy(baseline)
    tables = {}
    for policy in sorted(after):
        if policy in before:
            old, new = shared_confusions([before[policy], after[policy]])
            tables[policy] = old, new
        else:
            tables[policy] = (None, shared_confusions([after[policy]])[0])
    return tables


def _cell(before: Confusion | None, after: Confusion, row: str, column: str) -> str:
    new = after.count(row, column)
    if before is None:
        return str(new) if new else "·"
    old = before.count(row, column)
    return f"{old} → {new}" if old or new else "·"


def markdown_table(before: Confusion | None, after: Confusion) -> str:
    headers = ["expected ↓ / called →", *after.columns]
    rows = [[row, *(_cell(before, after, row, column) for column in after.columns)] for row in after.rows]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def markdown_section(candidate: RunResult, baseline: RunResult | None, png: str | None) -> list[str]:
    """The Markdown blocks of accuracy.md's confusion section."""
    legend = (
        "Cases by the tool(s) they expect (rows) and what the model called (columns); "
        + ("each cell reads before → after. " if baseline else "")
        + f"`{NO_TOOL}`: no call; `{MALFORMED}`: the answer could not be fully parsed."
        + (f" Heatmap: `{png}`." if png else "")
    )
    blocks = ["## Which tool went where", legend]
    for policy, (before, after) in policy_confusions(candidate, baseline).items():
        blocks += [f"### {policy}", markdown_table(before, after)]
    return blocks


def model_name(model: str) -> str:
    return Path(model).name or model


def write_heatmap(path: Path, candidate: RunResult, baseline: RunResult | None) -> Path | None:
    """reports/confusion.png: a row of panels per policy, before and after side by side; colour is the
    share of the row's cases, the number the count. None (and no stale file left) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path.unlink(missing_ok=True)
        return None
    tables = policy_confusions(candidate, baseline)
    panels = [("before", baseline), ("after", candidate)] if baseline else [("after", candidate)]
    widest = max(len(after.columns) for _, after in tables.values())
    tallest = max(len(after.rows) for _, after in tables.values())
    figure, axes = plt.subplots(
        len(tables), len(panels), squeeze=False,
        figsize=(len(panels) * (2.5 + 0.55 * widest), len(tables) * (2.2 + 0.45 * tallest)),
    )
    for line, (policy, pair) in enumerate(tables.items()):
        for column, ((when, run), table) in enumerate(zip(panels, pair if baseline else pair[1:])):
            _draw_panel(axes[line][column], table, f"{policy}: {when} ({model_name(run.model)})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)
    os.replace(staging, path)  # a reader never sees half a picture
    return path


def _draw_panel(axes, table: Confusion | None, title: str) -> None:
    from matplotlib.patches import Rectangle

    if table is None:  # this policy was not run by the before model
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
        x = table.columns.index(row)
        axes.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#2ca02c", linewidth=1.5))
    axes.set_xticks(range(len(table.columns)), table.columns, rotation=40, ha="right", fontsize=8)
    axes.set_yticks(range(len(table.rows)), table.rows, fontsize=8)
    axes.set_xlabel("called (colour: share of the row's cases; green: right)", fontsize=8)
    axes.set_ylabel("expected")
    axes.set_title(title, fontsize=9)
