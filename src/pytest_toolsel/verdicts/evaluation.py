"""Case -> prompt -> generation -> parsed calls -> verdict, for one model over many cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from ..cases.suite import Case, Suite
from ..functiongemma.parsing import ParsedOutput, parse_output
from ..inference.answers import cached_answers
from ..inference.confidence import ToolChoice
from ..inference.generation import GenerationSettings
from ..inference.progress import ProgressSink
from ..inference.results_cache import Answer, AnswerCache
from ..inference.sampling import Sampling
from ..models.loading import LoadedModel
from .judge import Verdict, judge


@dataclass(frozen=True)
class Outcome:
    suite: Suite
    case: Case
    output: str
    parsed: ParsedOutput
    verdict: Verdict
    choice: ToolChoice | None = None  # the model's probabilities over the declared tools
    cut_at: int | None = None  # the generation budget, when it ended the answer before the answer ended

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
        return grouped(self.outcomes, group)

    def cases(self) -> list[tuple[Suite, Case]]:
        return [(outcome.suite, outcome.case) for outcome in self.outcomes]


def grouped(outcomes: Sequence[Outcome], group: Callable[[Outcome], Hashable]) -> dict:
    """`outcomes` by `group(outcome)`, each group in the order given."""
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault(group(outcome), []).append(outcome)
    return groups


def outcome_key(suite: Suite, case: Case) -> tuple[str, str]:
    return (str(suite.path), case.id)


def evaluate(
    model: str,
    load: Callable[[], LoadedModel],
    cases: Sequence[tuple[Suite, Case]],
    settings: GenerationSettings,
    *,
    confidence: bool = False,
    cache: AnswerCache | None = None,
    progress: ProgressSink | None = None,
    sampling: Sampling | None = None,
    judge_answer: Callable[[Suite, Case, Answer], "Outcome"] | None = None,
) -> RunResult:
    """Answers for every case (from the cache where possible; the model is loaded only if needed), judged.
    `progress` is shown the cases answered out of those generated, chunk by chunk. With `sampling`
    each case is answered by sampled trials, which `judge_answer` (trials.judge_for) judges together."""
    answers, generated = cached_answers(load, cases, settings, confidence=confidence, cache=cache, progress=progress,
                                        sampling=sampling)
    judge_answer = judge_answer or judged
    outcomes = [judge_answer(suite, case, found) for (suite, case), found in zip(cases, answers)]
    return RunResult(model=model, outcomes=tuple(outcomes), reused=len(cases) - len(generated))


def judged(suite: Suite, case: Case, found: Answer) -> Outcome:
    parsed = parse_output(found.output)
    verdict = judge(case, parsed, suite.tools, found.cut_at)
    return Outcome(suite, case, found.output, parsed, verdict, found.choice, found.cut_at)


def report_order(outcome: Outcome) -> tuple[str, int, str]:
    """Outcomes in reports go file by file, case by case (each case's variants after it), however the
    run was split up."""
    return (str(outcome.suite.path), outcome.case.index, outcome.case.variant or "")
