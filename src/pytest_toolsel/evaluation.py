"""Case -> prompt -> generation -> parsed calls -> verdict, for one model over many cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .casefile import Case, Suite
from .chat_format import prompt_messages
from .generation import GenerationSettings, generate
from .modeling import LoadedModel
from .parsing import ParsedOutput, parse_output
from .verdicts import Verdict, judge


@dataclass(frozen=True)
class Outcome:
    suite: Suite
    case: Case
    output: str
    parsed: ParsedOutput
    verdict: Verdict

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


def outcome_key(suite: Suite, case: Case) -> tuple[str, str]:
    return (str(suite.path), case.id)


def render_prompt(tokenizer, suite: Suite, case: Case) -> str:
    return tokenizer.apply_chat_template(
        prompt_messages(case.prompt, suite.system),
        tools=suite.tool_schemas,
        add_generation_prompt=True,
        tokenize=False,
    )


def evaluate(loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], settings: GenerationSettings) -> RunResult:
    prompts = [render_prompt(loaded.tokenizer, suite, case) for suite, case in cases]
    outputs = generate(loaded, prompts, settings)
    outcomes = []
    for (suite, case), output in zip(cases, outputs):
        parsed = parse_output(output)
        outcomes.append(Outcome(suite, case, output, parsed, judge(case, parsed)))
    return RunResult(model=loaded.name, outcomes=tuple(outcomes))
