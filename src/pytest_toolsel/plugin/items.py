"""What pytest collects from a case file, as in pytest's own example of tests in YAML files: the file
(`CaseFile.collect`), its cases (`CaseItem.runtest`) and how a miss reads (`repr_failure`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from ..cases.suite import Case, CaseFileError, Suite
from ..cases.sources import load_suites
from ..inference.confidence import ToolChoice
from ..models.loading import ModelLoadError
from ..verdicts.evaluation import Outcome

if TYPE_CHECKING:
    from .session import ToolselSession

# Where the items find the session's state (set by pytest_configure).
SESSION_KEY: pytest.StashKey[ToolselSession] = pytest.StashKey()


def display_path(path: Path, rootpath: Path) -> Path:
    """How reports and errors name a case file: relative to the rootdir, or whole when outside it
    (where pytest's node id names the file by the collection argument, often as '.')."""
    try:
        return path.relative_to(rootpath)
    except ValueError:
        return path


class CaseFile(pytest.File):
    def collect(self):
        try:
            suites = load_suites(self.path, display=display_path(self.path, self.config.rootpath))
        except CaseFileError as problem:
            raise self.CollectError(str(problem)) from None
        state = self.config.stash[SESSION_KEY]
        state.suites.extend(suites)
        state.notes.extend(dict.fromkeys(note for suite in suites for note in suite.notes if note not in state.notes))
        cases = sorted(((suite, case) for suite in suites for case in suite.cases), key=lambda pair: pair[1].index)
        for suite, case in cases:
            item = CaseItem.from_parent(self, name=case.id, suite=suite, case=case)
            item.add_marker(pytest.mark.toolsel)
            if case.xfail:
                item.add_marker(pytest.mark.xfail(reason=case.xfail))
            yield item


class ToolSelectionMiss(Exception):
    """A failed case: the wrong tool choice, or (under --strict-calls) calls that do not fit their schemas."""

    def __init__(self, outcome: Outcome, model: str):
        super().__init__(outcome.case.id)
        self.outcome = outcome
        self.model = model


class CaseItem(pytest.Item):
    def __init__(self, *, suite: Suite, case: Case, **kwargs):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case

    def runtest(self) -> None:
        state = self.config.stash[SESSION_KEY]
        settle(state, state.runs.outcome_for(self), lambda: state.runs.before_passed(self.suite, self.case))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ToolSelectionMiss):
            return format_miss(excinfo.value)
        if isinstance(excinfo.value, ModelLoadError):
            return f"pytest-toolsel could not load a model: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, (self.case.line or 1) - 1, f"{self.suite.policy}: {self.case.id}"


def settle(state: ToolselSession, outcome: Outcome, before_passed: Callable[[], bool]) -> None:
    """A test's verdict on an outcome: return when it passes; xfail when it is no regression
    (--regressions-only) or counts against a min_accuracy bar; else raise ToolSelectionMiss."""
    if outcome.passes(state.options.strict_calls):
        return
    miss = ToolSelectionMiss(outcome, state.candidate.model)
    if state.options.regressions_only and not before_passed():
        pytest.xfail(f"not a regression: the before model {state.runs.base_model()} missed it too: {describe_miss(miss)}")
    bar = state.accuracy_bar(outcome.suite)
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
