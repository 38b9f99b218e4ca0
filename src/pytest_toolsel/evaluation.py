"""Case -> prompt -> generation -> parsed calls -> verdict, for one model over many cases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from .casefile import Case, Suite
from .chat_format import prompt_messages
from .confidence import ToolChoice, choice_from_scores, tool_call_tokens, tool_choices
from .generation import GenerationSettings, can_score_continuations, generate, generate_scored
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

    def passes(self, strict_calls: bool) -> bool:
        """The test's verdict: the tool choice, and under --strict-calls also calls that fit their schemas."""
        return self.passed and not (strict_calls and self.verdict.schema_problems)

    @property
    def made_call(self) -> bool:
        return bool(self.parsed.calls)

    @property
    def calls_valid(self) -> bool:
        """Every call parsed and fits its tool's schema (meaningful for answers that made a call)."""
        return not self.parsed.malformed and not self.verdict.schema_problems


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

    def grouped(self, group: Callable[[Outcome], str]) -> dict[str, list[Outcome]]:
        """Outcomes by `group(outcome)` (a policy, an expected tool), each group in run order."""
        groups: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            groups.setdefault(group(outcome), []).append(outcome)
        return groups

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


def per_policy(cases: Sequence[tuple[Suite, Case]], work: Callable[[Suite, list[int]], list[T]]) -> list[T]:
    """`work(suite, indices)` once per distinct set of tools and system text, its results put back in the
    cases' order.

    Prompts with the same tools and system text share their developer turn, the long prefix that
    generation and scoring run once per call, and fill one batch together even from several files.
    """
    groups: dict[str, list[int]] = {}
    for index, (suite, _) in enumerate(cases):
        key = json.dumps({"tools": suite.tool_schemas, "system": suite.system}, sort_keys=True)
        groups.setdefault(key, []).append(index)
    results: list = [None] * len(cases)
    for indices in groups.values():
        for index, result in zip(indices, work(cases[indices[0]][0], indices)):
            results[index] = result
    return results


def answer(
    loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], settings: GenerationSettings, *, confidence: bool
) -> list[Answer]:
    prompts = [render_prompt(loaded.tokenizer, suite, case) for suite, case in cases]

    def policy_answers(suite: Suite, indices: list[int]) -> list[Answer]:
        texts = [prompts[i] for i in indices]
        if not confidence:
            return [Answer(output) for output in generate(loaded, texts, settings)]
        names = [tool.name for tool in suite.tools]
        calls = tool_call_tokens(loaded.tokenizer, texts, names) if can_score_continuations(loaded) else None
        if calls is None or len(names) < 2:
            outputs = generate(loaded, texts, settings)
            choices = tool_choices(loaded, texts, [names] * len(texts), settings.batch_size)
        else:
            # The tools' calls are scored from the same pass over each prompt that generation makes.
            outputs, scores = generate_scored(loaded, texts, settings, calls)
            choices = [choice_from_scores(names, row) for row in scores]
        return [Answer(output, choice) for output, choice in zip(outputs, choices)]

    return per_policy(cases, policy_answers)


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
    return Outcome(suite, case, found.output, parsed, judge(case, parsed, suite.tools), found.choice)


def report_order(outcome: Outcome) -> tuple[str, int]:
    """Outcomes in reports go file by file, case by case, however the run was split up."""
    return (str(outcome.suite.path), outcome.case.index)
