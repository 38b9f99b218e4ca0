"""`toolsel_model`: the model under test, for tests written in Python.

The same model the case files test (trained first when --model is missing, loaded once, on the same
device, with the same generation settings and results cache), asked with any prompt or
conversation, tools and system text. `assert_selects` judges an answer as a case file's case is
judged, fails with the same report, and records the outcome under the test's id, so that it counts
in the reports and the before model answers it too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pytest

from ..cases.conversation import ConversationReader
from ..cases.heldout import CasesReader
from ..cases.leakage import training_prompts
from ..cases.suite import Case, CaseFileError, Suite, normalise_prompt
from ..cases.tools import ToolsReader
from ..cases.sources import load_suites
from ..functiongemma.parsing import ParsedOutput, ToolCall, parse_output
from ..inference.confidence import ToolChoice
from ..inference.results_cache import Answer
from ..verdicts.evaluation import judged
from .items import ToolSelectionMiss, format_miss, settle

if TYPE_CHECKING:
    from .session import ToolselSession

Prompt = str | Sequence[Mapping[str, Any]]  # a user prompt, or a conversation in the HF chat form
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
MAX_ASSERTIONS = 10_000  # per test, for the report order only


@dataclass(frozen=True)
class ModelAnswer:
    """The model's answer to one prompt: its parsed calls, raw output and (when asked) tool probabilities."""

    suite: Suite  # the tools and system text it was asked with
    case: Case  # the prompt or conversation it answered (no expectation yet)
    output: str
    parsed: ParsedOutput
    choice: ToolChoice | None
    cached: bool  # taken from pytest's cache, not generated

    @property
    def prompt(self) -> str:
        return self.case.prompt

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return self.parsed.calls

    @property
    def tools_called(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.parsed.called))

    @property
    def probabilities(self) -> dict[str, float] | None:
        return self.choice.probabilities if self.choice else None


class ToolselModel:
    """The session's model under test (the `toolsel_model` fixture)."""

    def __init__(self, session: ToolselSession):
        self._session = session
        self._asked = 0
        self._recorded: dict[str, int] = {}  # test id -> outcomes recorded for it

    @property
    def model(self) -> str:
        return self._session.options.model

    def policy(self, name_or_path: str | Path) -> Suite:
        """A collected case file's policy (by its name), or the case file at a path: its tools and system text."""
        collected = {suite.policy: suite for suite in self._session.suites}
        if str(name_or_path) in collected:
            return collected[str(name_or_path)]
        path = Path(name_or_path)
        if path.is_file():
            try:
                suites = load_suites(path)
            except CaseFileError as problem:
                _fail(str(problem))
            if len(suites) == 1:
                return suites[0]
            self._fail_at(self._where(), f"{path} has rows with {len(suites)} different tool sets or system texts; "
                          "give tools= and system= instead")
        self._fail_at(
            self._where(),
            f"no collected case file has the policy {str(name_or_path)!r} and no such file exists "
            f"(collected policies: {', '.join(collected) or 'none'}); collect the case file with the tests "
            "(`pytest cases/ tests/`) or give its path",
        )

    def ask(
        self, prompt: Prompt, *, policy: str | Suite | None = None, tools: Sequence[Mapping] | None = None,
        system: str | None = None, confidence: bool = False,
    ) -> ModelAnswer:
        """The model's answer to one prompt or conversation, with a policy's tools or the tools given."""
        return self.ask_many([prompt], policy=policy, tools=tools, system=system, confidence=confidence)[0]

    def ask_many(
        self, prompts: Sequence[Prompt], *, policy: str | Suite | None = None, tools: Sequence[Mapping] | None = None,
        system: str | None = None, confidence: bool = False,
    ) -> list[ModelAnswer]:
        """Answers to many prompts, generated together in batches (and from the results cache)."""
        asked = [self._question(prompt, policy, tools, system) for prompt in prompts]
        answers, generated = self._session.runs.candidate_answers(asked, confidence=confidence)
        return [
            ModelAnswer(suite, case, found.output, parse_output(found.output), found.choice, index not in generated)
            for index, ((suite, case), found) in enumerate(zip(asked, answers))
        ]

    def assert_selects(
        self, prompt_or_answer: Prompt | ModelAnswer, expect: str | Sequence[str] | None, *,
        args: Mapping[str, Any] | None = None, policy: str | Suite | None = None,
        tools: Sequence[Mapping] | None = None, system: str | None = None,
    ) -> ModelAnswer:
        """Fail unless the answer calls exactly the `expect`ed tools (a name, names, or None / "none" for
        no call) and passes the argument checks in `args` (as a case file's `args:`). The outcome is
        recorded under the running test's id for the reports, and the before model answers it too."""
        answer = prompt_or_answer
        if not isinstance(answer, ModelAnswer):
            answer = self.ask(answer, policy=policy, tools=tools, system=system,
                              confidence=self._session.options.confidence)
        test_id, path = self._current_test()
        case = self._expectation(answer, expect, args, test_id)
        trained = training_prompts(self._session.suites).get(normalise_prompt(case.prompt))
        if trained:
            self._fail_at(self._where(), f"the prompt {case.prompt!r} is also a training prompt ({trained}); "
                          "a model cannot be graded on what it was trained on")
        outcome = judged(replace(answer.suite, path=path), case, Answer(answer.output, answer.choice))
        runs = self._session.runs
        runs.record(outcome, reused=answer.cached)
        try:
            settle(self._session, outcome, lambda: runs.before_passed(outcome.suite, outcome.case))
        except ToolSelectionMiss as miss:
            where = self._where()
            _fail(f"{format_miss(miss)}\n  asserted at: {where.path}:{where.line}")
        return answer

    # -- building the questions ----------------------------------------------------------------------

    def _question(self, prompt: Prompt, policy, tools, system) -> tuple[Suite, Case]:
        where = self._where()
        suite = self._suite(policy, tools, system, where)
        self._asked += 1
        if isinstance(prompt, str):
            if not prompt.strip():
                self._fail_at(where, "the prompt is empty")
            return suite, Case(id=f"asked-{self._asked}", prompt=prompt, expect=frozenset(), index=self._asked)
        messages = list(prompt)
        if messages and isinstance(messages[0], Mapping) and messages[0].get("role") in ("system", "developer"):
            if system is not None or policy is not None:
                self._fail_at(where, "the conversation starts with a system message, and a system text is given too")
            suite = replace(suite, system=messages[0].get("content"))
            messages = messages[1:]
        reader = ConversationReader(where.path, None)
        try:
            conversation, text = reader.read_conversation(messages, {t.name: t for t in suite.tools}, (), where.label)
        except CaseFileError as problem:
            self._fail_at(where, problem.message)
        case = Case(id=f"asked-{self._asked}", prompt=text, expect=frozenset(), index=self._asked,
                    conversation=conversation)
        return suite, case

    def _suite(self, policy, tools, system, where: _Where) -> Suite:
        if (policy is None) == (tools is None):
            self._fail_at(where, "give the tools to ask with: policy= (a collected policy or a case file) or tools=")
        if policy is not None:
            chosen = policy if isinstance(policy, Suite) else self.policy(policy)
            return Suite(where.path, chosen.policy, system if system is not None else chosen.system, chosen.tools, (), ())
        try:
            declared = ToolsReader(where.path, None).read_tools(list(tools))
        except CaseFileError as problem:
            self._fail_at(where, f"{problem.where}: {problem.message}" if problem.where else problem.message)
        return Suite(where.path, where.path.stem, system, declared, (), ())

    def _expectation(self, answer: ModelAnswer, expect, args, test_id: str) -> Case:
        """The answer's case with what it must call, checked as a case file's `expect:` and `args:` are."""
        where = self._where()
        entry = {"prompt": answer.case.prompt, "expect": expect if expect is None or isinstance(expect, str) else list(expect)}
        if args is not None:
            entry["args"] = dict(args)
        try:
            read = CasesReader(where.path, None).read_case(entry, 0, {t.name: t for t in answer.suite.tools})
        except CaseFileError as problem:
            self._fail_at(where, problem.message)
        count = self._recorded[test_id] = self._recorded.get(test_id, 0) + 1
        # Reports list a file's cases by index: the test's place in the collection, then the order of
        # its assertions, so that reports read the same however xdist shares out the tests.
        item = self._session.current_item
        position = item.session.items.index(item) if item in item.session.items else 0
        return replace(
            answer.case, id=test_id if count == 1 else f"{test_id}#{count}", expect=read.expect,
            arg_checks=read.arg_checks, index=position * MAX_ASSERTIONS + count, line=where.line,
        )

    # -- where the test is ---------------------------------------------------------------------------

    def _current_test(self) -> tuple[str, Path]:
        item = self._session.current_item
        if item is None:
            _fail("toolsel_model.assert_selects must be called from a running test")
        file_part, _, rest = item.nodeid.partition("::")
        return rest or item.name, Path(file_part)

    def _where(self) -> _Where:
        item = self._session.current_item
        path, line = _call_site()
        shown = Path(item.nodeid.split("::")[0]) if item is not None else path
        return _Where(shown, line, item.nodeid if item is not None else str(path))

    @staticmethod
    def _fail_at(where: _Where, message: str):
        _fail(f"{where.path}:{where.line}: {where.label}: {message}")


@dataclass(frozen=True)
class _Where:
    path: Path  # the test file, as pytest shows it
    line: int | None  # of the call in the test
    label: str  # the test's id


def _fail(message: str):
    """Fail the running test with `message` alone: no traceback, no chained exception."""
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as failure:
        raise failure from None


def _call_site() -> tuple[Path, int | None]:
    """The file and line of the test code that called into the fixture."""
    frame = sys._getframe(1)
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE_DIR):
        frame = frame.f_back
    return (Path(frame.f_code.co_filename), frame.f_lineno) if frame is not None else (Path("?"), None)
