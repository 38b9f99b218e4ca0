"""`toolsel_model`: the model under test, for tests written in Python.

The same model the case files test (trained first when --model is missing, loaded once, on the same
device, with the same generation settings and results cache), asked with any prompt or
conversation, tools and system text. `assert_selects` judges an answer as a case file's case is
judged, fails with the same report, and records the outcome under the test's id, so that it counts
in the reports and the before model answers it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..cases.heldout import CasesReader
from ..cases.leakage import training_prompts
from ..cases.suite import Case, CaseFileError, Suite, normalise_prompt
from ..functiongemma.parsing import ParsedOutput, ToolCall, parse_output
from ..inference.confidence import ToolChoice
from ..inference.results_cache import Answer
from ..verdicts.evaluation import judged
from .call_site import CallSite, call_site, fail, fail_at
from .misses import ToolSelectionMiss, format_miss, settle
from .questions import Prompt, find_policy, question, question_suite

if TYPE_CHECKING:
    from .session import ToolselSession

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
    cut_at: int | None = None  # the generation budget, when it ended the answer before the answer ended

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
        return self._session.options.model.text

    def policy(self, name_or_path: str | Path) -> Suite:
        """A collected case file's policy (by its name), or the case file at a path: its tools and system text."""
        return find_policy(self._session.suites, name_or_path, self._site())

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
        site = self._site()
        suite = question_suite(self._session.suites, policy, tools, system, site)
        system_given = system is not None or policy is not None
        asked = []
        for prompt in prompts:
            self._asked += 1
            asked.append(question(suite, prompt, self._asked, site, system_given))
        answers, generated = self._session.runs.candidate_answers(asked, confidence=confidence)
        return [
            ModelAnswer(suite, case, found.output, parse_output(found.output), found.choice, index not in generated,
                        found.cut_at)
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
        test_id = self._current_test_id()
        site = self._site()
        case = self._expectation(answer, expect, args, test_id, site)
        trained = training_prompts(self._session.suites).get(normalise_prompt(case.prompt))
        if trained:
            fail_at(site, f"the prompt {case.prompt!r} is also a training prompt ({trained}); "
                    "a model cannot be graded on what it was trained on")
        outcome = judged(replace(answer.suite, path=site.path), case, Answer(answer.output, answer.choice, answer.cut_at))
        runs = self._session.runs
        runs.record(outcome, reused=answer.cached)
        try:
            settle(outcome, self._session.options, runs)
        except ToolSelectionMiss as miss:
            fail(f"{format_miss(miss)}\n  asserted at: {site.path}:{site.line}")
        return answer

    def _expectation(self, answer: ModelAnswer, expect, args, test_id: str, where: CallSite) -> Case:
        """The answer's case with what it must call, checked as a case file's `expect:` and `args:` are."""
        entry = {"prompt": answer.case.prompt, "expect": expect if expect is None or isinstance(expect, str) else list(expect)}
        if args is not None:
            entry["args"] = dict(args)
        try:
            read = CasesReader(where.path, None).read_case(entry, 0, {t.name: t for t in answer.suite.tools})
        except CaseFileError as problem:
            fail_at(where, problem.message)
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

    def _current_test_id(self) -> str:
        item = self._session.current_item
        if item is None:
            fail("toolsel_model.assert_selects must be called from a running test")
        _, _, rest = item.nodeid.partition("::")
        return rest or item.name

    def _site(self) -> CallSite:
        return call_site(self._session.current_item)
