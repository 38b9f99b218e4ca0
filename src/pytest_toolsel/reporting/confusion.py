"""Which tool was called for which expected one: a tool-by-tool confusion table, before and after.

Rows are what a case expects (a tool, `none`, or a parallel set such as `get_stock_price, get_weather`);
columns are what the model called, with `none` for no call and `malformed` for an answer that could not
be fully parsed (then what was called is not known). Before and after share rows and columns, so the
two read side by side.

A table keeps the TOP_LABELS most frequent labels and counts the rest as `other`: a dataset whose rows
bring their own tools names thousands of tools, and a table over all of them grows with the square of
their number (a megabyte of Markdown at 120 rows, a picture 20,000 pixels wide).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from tabulate import tabulate

from ..cases.suite import NO_TOOL
from ..verdicts.evaluation import Outcome

MALFORMED = "malformed"
CUT = "cut"  # the generation budget ended the answer before the answer ended
OTHER = "other"
TOP_LABELS = 20  # tools (or parallel sets) a table names; the rest are `other`


def expected_label(outcome: Outcome) -> str:
    return outcome.case.expect_label


def called_label(outcome: Outcome) -> str:
    """The called tools as a label in the expected labels' form (sorted, comma-joined)."""
    if outcome.cut_at is not None:
        return CUT
    if outcome.parsed.malformed:
        return MALFORMED
    return ", ".join(sorted(set(outcome.parsed.called))) or NO_TOOL


@dataclass(frozen=True)
class Confusion:
    """Counts of cases by row (what they expect) and column (what the model did)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: Counter  # (row, column) -> cases
    right: Mapping[str, str] = field(default_factory=dict, compare=False)  # row -> the column of its right answers

    def count(self, row: str, column: str) -> int:
        return self.counts[(row, column)]

    def as_dict(self) -> dict:
        return {
            "rows": list(self.rows),
            "columns": list(self.columns),
            "counts": [[self.count(row, column) for column in self.columns] for row in self.rows],
        }


def label_order(declared: Sequence[str]):
    """Sort key: single tools in declaration order, then parallel sets, then `other`, `none` and
    `malformed`, so that the expected labels' cells run down the diagonal."""
    position = {name: index for index, name in enumerate(declared)}
    last = {OTHER: 1, NO_TOOL: 2, MALFORMED: 3, CUT: 4}

    def key(label: str) -> tuple:
        if label in last:
            return (last[label],)
        names = label.split(", ")
        return (0, len(names), sorted(position.get(name, len(position)) for name in names), label)

    return key


def kept_labels(runs: Sequence[Sequence[Outcome]], declared: Sequence[str], top: int) -> set[str]:
    """The `top` labels that name the most cases (expected plus called, over all runs); a declared
    tool that nothing expects or calls still gets a place left over (a tool never chosen is worth seeing).
    `none` and `malformed` always have theirs, outside the count."""
    frequency = Counter({name: 0 for name in declared})
    for run in runs:
        for outcome in run:
            frequency[expected_label(outcome)] += 1
            frequency[called_label(outcome)] += 1
    for always in (NO_TOOL, MALFORMED, CUT):
        frequency.pop(always, None)
    order = label_order(declared)
    return set(sorted(frequency, key=lambda label: (-frequency[label], order(label)))[:top])


def shared_confusions(runs: Sequence[Sequence[Outcome]], top: int = TOP_LABELS) -> list[Confusion]:
    """One confusion per run of the same cases, over the same rows and columns, naming at most `top`
    tools or parallel sets (the rest are `other`)."""
    outcomes = [outcome for run in runs for outcome in run]
    declared = list(dict.fromkeys(name for outcome in outcomes for name in outcome.suite.tool_names))
    kept = kept_labels(runs, declared, top) | {NO_TOOL, MALFORMED}
    kept_when_seen = kept | {CUT}  # a column of its own only in runs where the budget cut an answer

    def named(label: str) -> str:
        return label if label in kept_when_seen else OTHER

    key = label_order(declared)
    rows = sorted({named(expected_label(o)) for o in outcomes}, key=key)
    columns = sorted(kept | {named(called_label(o)) for o in outcomes} | set(rows), key=key)
    right = {row: row for row in rows if row != OTHER}  # `other` expected and `other` called may differ
    return [
        Confusion(tuple(rows), tuple(columns), Counter((named(expected_label(o)), named(called_label(o))) for o in run), right)
        for run in runs
    ]


def _cell(before: Confusion | None, after: Confusion, row: str, column: str) -> str:
    new = after.count(row, column)
    if before is None:
        return str(new) if new else "·"
    old = before.count(row, column)
    return f"{old} → {new}" if old or new else "·"


def markdown_table(before: Confusion | None, after: Confusion, corner: str = "expected ↓ / called →") -> str:
    headers = [corner, *after.columns]
    rows = [[row, *(_cell(before, after, row, column) for column in after.columns)] for row in after.rows]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
