"""Case -> prompt -> generation -> parsed calls -> verdict, for one model over many cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from .casefile import Case, Suite
from .chat_format import prompt_messages
from .confidence import ToolChoice, tool_choices
from .generation import GenerationSettings, generate
from .modeling import LoadedModel
from .results_cache import Answer, AnswerCache
from .parsing import ParsedOutput, parse_output
from .verdicts import Verdict, judge

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    suite: Suite
    case: Case
    output: str
    parsed: ParsedOutput
    verdict: Verdict
    choice: ToolChoice | None = None  # the model's probabilities over the declared tools

    @property
    def margin(self) -> float | None:
        return self.choice.margin(self.case.expect) if self.choice else None

    @property
    def key(self) -> tuple[str, str]:
        return outcome_key(self.suite, self.case)

    @property
    def passed(self) -> bool:
        return self.verdict.passed


@dataclass(frozen=True)
class RunResult:
    model: str
    outcomes: tuple[Outcome, ...]
    reused: int = 0  # answers taken from the results cache instead of generated

    @property
    def passed(self) -> int:
        return sum(outcome.passed for outcome in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def accuracy(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def by_key(self) -> dict[tuple[str, str], Outcome]:
        return {outcome.key: outcome for outcome in self.outcomes}

    def cases(self) -> list[tuple[Suite, Case]]:
        return [(outcome.suite, outcome.case) for outcome in self.outcomes]


def outcome_key(suite: Suite, case: Case) -> tuple[str, str]:
    return (str(suite.path), case.id)


def render_prompt(tokenizer, suite: Suite, case: Case) -> str:
    return tokenizer.apply_chat_template(
        prompt_messages(case.prompt, suite.system),
        tools=suite.tool_schemas,
        add_generation_prompt=True,
        tokenize=False,
    )


def per_suite(cases: Sequence[tuple[Suite, Case]], work: Callable[[Suite, list[int]], list[T]]) -> list[T]:
    """`work(suite, indices)` once per suite, its results put back in the cases' order.

    A suite's prompts share their tool declarations, the long prefix that generation and scoring
    run once per call.
    """
    by_suite: dict[int, list[int]] = {}
    for index, (suite, _) in enumerate(cases):
        by_suite.setdefault(id(suite), []).append(index)
    results: list = [None] * len(cases)
    for indices in by_suite.values():
        for index, result in zip(indices, work(cases[indices[0]][0], indices)):
            results[index] = result
    return results


def answer(
    loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], settings: GenerationSettings, *, confidence: bool
) -> list[Answer]:
    prompts = [render_prompt(loaded.tokenizer, suite, case) for suite, case in cases]
    outputs = per_suite(cases, lambda suite, indices: generate(loaded, [prompts[i] for i in indices], settings))
    choices: list[ToolChoice | None] = [None] * len(cases)
    if confidence:
        choices = per_suite(cases, lambda suite, indices: tool_choices(
            loaded, [prompts[i] for i in indices], [[tool.name for tool in suite.tools]] * len(indices),
            settings.batch_size,
        ))
    return [Answer(output, choice) for output, choice in zip(outputs, choices)]


def evaluate(
    model: str,
    load: Callable[[], LoadedModel],
    cases: Sequence[tuple[Suite, Case]],
    settings: GenerationSettings,
    *,
    confidence: bool = False,
    cache: AnswerCache | None = None,
) -> RunResult:
    """Answers for every case (from the cache where possible; the model is loaded only if needed), judged."""
    answers: list[Answer | None] = [cache.get(suite, case) if cache else None for suite, case in cases]
    missing = [index for index, found in enumerate(answers) if found is None]
    if missing:
        fresh = answer(load(), [cases[i] for i in missing], settings, confidence=confidence)
        for index, new in zip(missing, fresh):
            answers[index] = new
            if cache:
                cache.put(*cases[index], new)
        if cache:
            cache.save()
    outcomes = [judged(suite, case, found) for (suite, case), found in zip(cases, answers)]
    return RunResult(model=model, outcomes=tuple(outcomes), reused=len(cases) - len(missing))


def judged(suite: Suite, case: Case, found: Answer) -> Outcome:
    parsed = parse_output(found.output)
    return Outcome(suite, case, found.output, parsed, judge(case, parsed), found.choice)


def report_order(outcome: Outcome) -> tuple[str, int]:
    """Outcomes in reports go file by file, case by case, however the run was split up."""
    return (str(outcome.suite.path), outcome.case.index)
