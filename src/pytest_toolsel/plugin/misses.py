"""A test's verdict on an outcome (`settle`), and how a miss reads: the same for a case file's case
and for a Python test's `toolsel_model.assert_selects`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ..cases.suite import Case
from ..inference.confidence import ToolChoice
from ..verdicts.evaluation import Outcome
from ..verdicts.trials import SampledOutcome
from .options import Options

if TYPE_CHECKING:
    from .runs import Runs


class ToolSelectionMiss(Exception):
    """A failed case: the wrong tool choice, or (under --strict-calls) calls that do not fit their schemas."""

    def __init__(self, outcome: Outcome, model: str):
        super().__init__(outcome.case.id)
        self.outcome = outcome
        self.model = model


def settle(outcome: Outcome, options: Options, runs: Runs) -> None:
    """A test's verdict on an outcome: return when it passes; xfail when it is no regression
    (--regressions-only: `runs` has the before model answer it) or counts against a min_accuracy bar;
    else raise ToolSelectionMiss."""
    if outcome.passes(options.strict_calls):
        return
    miss = ToolSelectionMiss(outcome, options.model.text)
    if options.regressions_only and not runs.before_passed(outcome.suite, outcome.case):
        pytest.xfail(f"not a regression: the before model {runs.base_model()} missed it too: {describe_miss(miss)}")
    bar = options.accuracy_bar(outcome.suite)
    if bar is not None:
        kind = "tool-selection miss" if outcome.verdict.reasons else "invalid call"  # the latter: --strict-calls
        pytest.xfail(f"{kind}, counted against min accuracy {bar:.0%}: {describe_miss(miss)}")
    raise miss


def describe_miss(miss: ToolSelectionMiss) -> str:
    verdict = miss.outcome.verdict
    if verdict.reasons:
        return "; ".join(verdict.reasons)
    # Only --strict-calls fails a case with the right tools.
    return "calls do not fit their tool's schema (--strict-calls): " + "; ".join(verdict.schema_problems)


def describe_choice(choice: ToolChoice) -> str:
    ranked = sorted(choice.probabilities.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {probability:.2f}" for name, probability in ranked)


def format_miss(miss: ToolSelectionMiss) -> str:
    outcome = miss.outcome
    calls = [f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)})" for call in outcome.parsed.calls]
    problems = outcome.verdict.schema_problems
    lines = [
        f"tool selection failed: {describe_miss(miss)}" if outcome.verdict.reasons
        else "tool selection passed, but the calls do not fit their tool's schema (--strict-calls)",
        *_conversation_lines(outcome.case),
        f"  prompt:     {outcome.case.prompt!r}",
        f"  expected:   {outcome.case.expect_label}",
        *([f"  tools:      {', '.join(outcome.suite.tool_names)} (declared so: {outcome.case.variant})"]
          if outcome.case.variant else []),
        *([f"  trials:     {outcome.describe_trials()}; shown below: trial {outcome.shown_trial}"]
          if isinstance(outcome, SampledOutcome) else []),
        f"  called:     {', '.join(calls) or 'no tool'}",
        *([f"  schema:     {'; '.join(problems)}"] if problems else []),
        f"  raw output: {outcome.output!r}",
        *([f"  tool probabilities: {describe_choice(outcome.choice)}"] if outcome.choice else []),
        f"  model:      {miss.model}",
    ]
    return "\n".join(lines)


def _conversation_lines(case: Case) -> list[str]:
    """The turns before the prompt's answer, when the case is a conversation: what the model saw."""
    if not case.conversation:
        return []
    return ["  conversation:"] + [f"    {message['role']}: {_turn(message)}" for message in case.conversation]


def _turn(message) -> str:
    if message["role"] == "tool":
        responses = [(message["name"], message["content"])] if "name" in message else [
            (item["name"], item["response"]) for item in message["content"]]
        return "; ".join(f"{name} -> {json.dumps(content, ensure_ascii=False, default=str)}" for name, content in responses)
    calls = [f"{c['function']['name']}({json.dumps(c['function']['arguments'], ensure_ascii=False)})"
             for c in message.get("tool_calls") or []]
    return " ".join(filter(None, [repr(message["content"]) if message.get("content") else "", *calls]))
