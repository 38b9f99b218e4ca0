"""Sampled trials judged (inference/sampling.py): a case passes when every trial passes (pass^k), or
with --min-pass-rate R when at least R of them do.

Each trial is judged as a greedy answer is. The case's outcome is a `SampledOutcome`: its verdict's
`passed` is the trials' together, and the rest of it (the answer, the calls, the reasons shown in a
failure) is one trial's, the one that says most: the first failing trial when the case fails, else
the first passing trial (one whose calls break their schema first, for --strict-calls to show).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Callable

from ..cases.suite import NO_TOOL, Case, Suite
from ..inference.results_cache import Answer
from .evaluation import Outcome, judged

Judge = Callable[[Suite, Case, Answer], Outcome]


@dataclass(frozen=True)
class SampledOutcome(Outcome):
    trials: tuple[Outcome, ...] = ()
    min_pass_rate: float = 1.0  # 1.0: every trial must pass
    shown_trial: int = 1  # the number (from 1) of the trial whose answer this outcome shows

    @property
    def pass_rate(self) -> float:
        return sum(trial.passed for trial in self.trials) / len(self.trials)

    def passes(self, strict_calls: bool) -> bool:
        """Enough trials pass; under --strict-calls a trial passes only with calls that fit their schemas."""
        return enough(sum(trial.passes(strict_calls) for trial in self.trials), len(self.trials), self.min_pass_rate)

    @property
    def tools_chosen(self) -> Counter:
        """How many trials chose each tool (several tools in one answer: `a + b`; no call: `none`)."""
        return Counter(" + ".join(trial.verdict.called) or NO_TOOL for trial in self.trials)

    def describe_trials(self) -> str:
        """`6 of 8 trials passed; chose get_weather 6, get_stock_price 2`."""
        chosen = ", ".join(f"{tools} {count}" for tools, count in self.tools_chosen.most_common())
        passed = sum(trial.passed for trial in self.trials)
        return f"{passed} of {len(self.trials)} trials passed; chose {chosen}"


def enough(passed: int, total: int, min_pass_rate: float) -> bool:
    return passed >= min_pass_rate * total - 1e-9  # 0.28 * 25 is 7.000000000000001 in floating point


def judged_answer(suite: Suite, case: Case, found: Answer, min_pass_rate: float = 1.0) -> Outcome:
    """`judged`, or for an answer of sampled trials their `SampledOutcome`."""
    if not found.trials:
        return judged(suite, case, found)
    trials = tuple(judged(suite, case, trial) for trial in found.trials)
    passed = enough(sum(trial.passed for trial in trials), len(trials), min_pass_rate)
    number = _shown_trial(trials, passed) + 1
    shown = trials[number - 1]
    reasons = () if passed else (
        _shortfall(trials, min_pass_rate), *(f"trial {number}: {reason}" for reason in shown.verdict.reasons))
    own = {field.name: getattr(shown, field.name) for field in fields(Outcome)}
    return SampledOutcome(**{**own, "verdict": replace(shown.verdict, passed=passed, reasons=reasons),
                             "choice": found.choice}, trials=trials, min_pass_rate=min_pass_rate, shown_trial=number)


def judge_for(min_pass_rate: float) -> Judge:
    """The judge of a run whose sampled cases need `min_pass_rate` of their trials to pass."""
    return partial(judged_answer, min_pass_rate=min_pass_rate)


def _shown_trial(trials: tuple[Outcome, ...], passed: bool) -> int:
    """The index of the trial that says most (see the module's docstring)."""
    if not passed:
        return next(i for i, trial in enumerate(trials) if not trial.passed)
    passing = [i for i, trial in enumerate(trials) if trial.passed]
    return next((i for i in passing if trials[i].verdict.schema_problems), passing[0])


def _shortfall(trials: tuple[Outcome, ...], min_pass_rate: float) -> str:
    failed = sum(not trial.passed for trial in trials)
    bar = "every trial must pass" if min_pass_rate >= 1 else f"--min-pass-rate {min_pass_rate:.0%}"
    return f"{failed} of {len(trials)} sampled trials failed (pass rate {1 - failed / len(trials):.0%}; {bar})"


def answer_of(outcome: Outcome) -> Answer:
    """The answer an outcome was judged from (to send it elsewhere and judge it again there)."""
    if isinstance(outcome, SampledOutcome):
        trials = tuple(answer_of(trial) for trial in outcome.trials)
        return Answer(trials[0].output, outcome.choice, trials[0].cut_at, trials=trials)
    return Answer(outcome.output, outcome.choice, outcome.cut_at)
