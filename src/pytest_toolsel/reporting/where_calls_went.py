"""Which tool went where, per policy: the tables accuracy.md, results.json and the heatmap show.

A policy whose cases share one tool set (a YAML case file) gets its tool-by-tool table. A policy whose
rows bring tool sets of their own (a dataset) gets a table by kind of outcome instead, and a
tool-by-tool table only for each tool set that MIN_SHARED_CASES cases or more share (at most
MAX_SHARED_TOOL_SETS of them, the largest): tables whose size does not depend on how many tools
the file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..cases.suite import NO_TOOL
from ..verdicts.evaluation import Outcome, RunResult
from .confusion import MALFORMED, OTHER, TOP_LABELS, Confusion, markdown_table, shared_confusions
from .outcome_kinds import LEGEND as KINDS_LEGEND
from .outcome_kinds import kind_confusions

MIN_SHARED_CASES = 10  # cases that must share a tool set, in a file of many, for its own tool-by-tool table
MAX_SHARED_TOOL_SETS = 6  # such tables per policy
NAMES_IN_TITLE = 8  # tools a shared tool set's title names


@dataclass(frozen=True)
class View:
    """One table: before (None when the before model did not answer these cases) and after."""

    title: str
    before: Confusion | None
    after: Confusion
    corner: str = "expected ↓ / called →"


@dataclass(frozen=True)
class PolicyViews:
    policy: str
    cases: int
    tool_sets: int  # distinct tool sets among the policy's cases
    views: tuple[View, ...]
    shared_left_out: int = 0  # tool sets shared by enough cases, beyond MAX_SHARED_TOOL_SETS

    @property
    def by_kind(self) -> bool:
        return self.tool_sets > 1


def by_policy(run: RunResult | None) -> dict[str, list[Outcome]]:
    return run.grouped(lambda outcome: outcome.suite.policy) if run else {}


def tool_set(outcome: Outcome) -> frozenset[str]:
    """The tools a case declares, in any order (a dataset shuffles one tool set from row to row)."""
    return frozenset(outcome.suite.tool_names)


def by_tool_set(outcomes: Sequence[Outcome]) -> list[list[Outcome]]:
    """The outcomes grouped by tool set, the most shared first."""
    groups: dict[frozenset[str], list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault(tool_set(outcome), []).append(outcome)
    return sorted(groups.values(), key=len, reverse=True)


def shared_tool_sets(groups: list[list[Outcome]]) -> list[list[Outcome]]:
    return [group for group in groups if len(group) >= MIN_SHARED_CASES]


def tool_set_title(group: Sequence[Outcome]) -> str:
    names = list(group[0].suite.tool_names)
    shown = ", ".join(names[:NAMES_IN_TITLE]) + (f" and {len(names) - NAMES_IN_TITLE} more" if len(names) > NAMES_IN_TITLE else "")
    return f"{len(group)} cases sharing {len(names)} tools: {shown}"


def policy_views(candidate: RunResult, baseline: RunResult | None) -> list[PolicyViews]:
    before = baseline.by_key() if baseline else {}

    def pair(outcomes: Sequence[Outcome], tables) -> tuple[Confusion | None, Confusion]:
        old = [before[o.key] for o in outcomes if o.key in before]
        if not old:
            return None, tables([outcomes])[0]
        return tuple(tables([old, outcomes]))

    policies = []
    for policy, outcomes in sorted(by_policy(candidate).items()):
        groups = by_tool_set(outcomes)
        if len(groups) == 1:
            views = [View(policy, *pair(outcomes, shared_confusions))]
            left_out = 0
        else:
            shared = shared_tool_sets(groups)
            views = [View(f"{policy}: by kind of outcome", *pair(outcomes, kind_confusions), corner="expected ↓ / outcome →")]
            views += [View(f"{policy}: {tool_set_title(group)}", *pair(group, shared_confusions))
                      for group in shared[:MAX_SHARED_TOOL_SETS]]
            left_out = max(0, len(shared) - MAX_SHARED_TOOL_SETS)
        policies.append(PolicyViews(policy, len(outcomes), len(groups), tuple(views), left_out))
    return policies


def markdown_section(policies: Sequence[PolicyViews], compared: bool, png: str | None) -> list[str]:
    """The Markdown blocks of accuracy.md's "Which tool went where" section."""
    legend = (
        "Cases by the tool(s) they expect (rows) and what the model called (columns); "
        + ("each cell reads before → after. " if compared else "")
        + f"`{NO_TOOL}`: no call; `{MALFORMED}`: the answer could not be fully parsed; `{OTHER}`: the tools "
        + f"beyond the {TOP_LABELS} that name the most cases."
        + (f" Heatmap: `{png}`." if png else "")
    )
    blocks = ["## Which tool went where", legend]
    for policy in policies:
        blocks.append(f"### {policy.policy}")
        if not policy.by_kind:
            blocks.append(markdown_table(policy.views[0].before, policy.views[0].after))
            continue
        kinds, *matrices = policy.views
        blocks += [
            f"{policy.cases} cases bring {policy.tool_sets} tool sets, so they are counted by kind of outcome: "
            + KINDS_LEGEND,
            markdown_table(kinds.before, kinds.after, kinds.corner),
        ]
        if not matrices:
            blocks.append(f"No tool set is shared by {MIN_SHARED_CASES} cases or more, so none gets a tool-by-tool table.")
        for view in matrices:
            blocks += [f"#### {view.title.removeprefix(policy.policy + ': ')}", markdown_table(view.before, view.after)]
        if policy.shared_left_out:
            blocks.append(f"{policy.shared_left_out} more tool sets are shared by {MIN_SHARED_CASES} cases or more; "
                          f"the {MAX_SHARED_TOOL_SETS} largest are shown.")
    return blocks


def policy_tables_record(outcomes: Sequence[Outcome]) -> dict:
    """results.json's tables for one run of a policy: `confusion` when its cases share one tool set,
    else null, the table by kind and the tool sets shared by enough cases."""
    groups = by_tool_set(outcomes)
    single = len(groups) == 1
    record = {
        "confusion": shared_confusions([outcomes])[0].as_dict() if single else None,
        "tool_sets": len(groups),
        "outcome_kinds": kind_confusions([outcomes])[0].as_dict(),
    }
    if not single:
        record["shared_tool_sets"] = [
            {"tools": list(group[0].suite.tool_names), "cases": len(group), "confusion": shared_confusions([group])[0].as_dict()}
            for group in shared_tool_sets(groups)[:MAX_SHARED_TOOL_SETS]
        ]
    return record
