"""Which tool went where, by kind of outcome instead of tool by tool.

When every row of a dataset brings its own tools, a tool-by-tool table has a row and a column for
every tool of every row and says little about each. What a reader asks of such a file is how often
the model called the expected tool, another of the row's tools, a tool the row never declared (an
invented name), nothing, or something unreadable: a table of two rows (cases that expect a call,
cases that expect none) by those five kinds, whatever the number of tools.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..verdicts.evaluation import Outcome
from .confusion import CUT, MALFORMED, Confusion

EXPECTED_TOOL = "expected tool"
OTHER_DECLARED = "other declared tool"
UNDECLARED = "undeclared tool"
NO_CALL = "no call"
KINDS = (EXPECTED_TOOL, OTHER_DECLARED, UNDECLARED, NO_CALL, MALFORMED, CUT)

EXPECTS_CALL = "expects a call"
EXPECTS_NO_CALL = "expects no call"
RIGHT_KIND = {EXPECTS_CALL: EXPECTED_TOOL, EXPECTS_NO_CALL: NO_CALL}

LEGEND = (
    f"`{EXPECTED_TOOL}`: exactly the expected tool(s); `{OTHER_DECLARED}`: tools the case declares, but "
    f"not exactly the expected ones; `{UNDECLARED}`: a name the case does not declare; `{NO_CALL}`; "
    f"`{MALFORMED}`: the answer could not be fully parsed; `{CUT}`: the generation budget ended the answer "
    "before it ended (raise --max-new-tokens)."
)


def expected_kind(outcome: Outcome) -> str:
    return EXPECTS_CALL if outcome.case.expect else EXPECTS_NO_CALL


def outcome_kind(outcome: Outcome) -> str:
    """What the answer did, as one of KINDS (the tool choice only: argument checks are not looked at)."""
    if outcome.cut_at is not None:
        return CUT
    if outcome.parsed.malformed:
        return MALFORMED
    called = set(outcome.parsed.called)
    if not called:
        return NO_CALL
    if called == outcome.case.expect:
        return EXPECTED_TOOL
    if not called <= set(outcome.suite.tool_names):
        return UNDECLARED
    return OTHER_DECLARED


def kind_confusions(runs: Sequence[Sequence[Outcome]]) -> list[Confusion]:
    """One table per run of the same cases, over the same rows: expected kind by outcome kind."""
    rows = tuple(row for row in RIGHT_KIND if any(expected_kind(o) == row for run in runs for o in run))
    return [Confusion(rows, KINDS, Counter((expected_kind(o), outcome_kind(o)) for o in run), RIGHT_KIND) for run in runs]
