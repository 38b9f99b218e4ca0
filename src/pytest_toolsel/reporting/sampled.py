"""Sampled trials in the reports (--samples N): each case's pass rate and the tools its trials chose;
per suite, the cases that pass (every trial, or --min-pass-rate) and the mean pass rate.

The tool-selection figures elsewhere count a sampled case as its test does: passed when enough of
its trials pass.
"""

from __future__ import annotations

from typing import Callable, Iterable

from tabulate import tabulate

from ..verdicts.evaluation import Outcome, RunResult
from ..verdicts.trials import SampledOutcome


def sampled(outcomes: Iterable[Outcome]) -> list[SampledOutcome]:
    return [o for o in outcomes if isinstance(o, SampledOutcome)]


def trials_record(outcome: Outcome) -> dict:
    """A sampled case's pass rate, the tools its trials chose and every trial (merged into its case record)."""
    if not isinstance(outcome, SampledOutcome):
        return {}
    return {
        "pass_rate": outcome.pass_rate,
        "tools_chosen": dict(outcome.tools_chosen.most_common()),
        "trials": [{"output": t.output, "called": list(t.verdict.called), "passed": t.passed} for t in outcome.trials],
    }


def sampled_run_record(outcomes: Iterable[Outcome]) -> dict:
    """The run's trials in short (merged into its run record); nothing for a greedy run."""
    cases = sampled(outcomes)
    if not cases:
        return {}
    return {"sampled": {
        "trials_per_case": len(cases[0].trials),
        "min_pass_rate": cases[0].min_pass_rate,
        "cases_passing": sum(o.passed for o in cases),
        "cases_passing_every_trial": sum(o.pass_rate == 1 for o in cases),
        "mean_pass_rate": sum(o.pass_rate for o in cases) / len(cases),
    }}


def _how(settings: dict | None, cases: list[SampledOutcome]) -> str:
    count = len(cases[0].trials)
    drawn = ""
    if settings and settings.get("do_sample"):
        drawn = (f" (temperature {settings['temperature']:g}, top-k {settings['top_k'] or 'off'}, "
                 f"top-p {settings['top_p']:g}, seed {settings['seed']})")
    bar = cases[0].min_pass_rate
    rule = "every trial passes" if bar >= 1 else f"at least {bar:.0%} of its trials pass"
    return f"Every case was answered {count} times by seeded sampling{drawn}; a case passes when {rule}."


def _row(outcomes: list[SampledOutcome]) -> list[str]:
    if not outcomes:
        return ["-", "-"]
    mean = sum(o.pass_rate for o in outcomes) / len(outcomes)
    return [f"{sum(o.passed for o in outcomes)}/{len(outcomes)}", f"{mean:.0%}"]


def markdown_section(candidate: RunResult, baseline: RunResult | None, settings: dict | None,
                     fold: Callable[[str, int], str]) -> list[str]:
    """Per suite the cases passing and the mean pass rate; the cases whose trials disagree."""
    cases = sampled(candidate.outcomes)
    if not cases:
        return []
    suites = sorted({o.suite.policy for o in cases})
    headers = ["suite", "cases passing", "mean pass rate"]
    if baseline:
        headers = ["suite", "cases passing before", "after", "mean pass rate before", "after"]
    rows = []
    for suite in suites:
        after = _row([o for o in cases if o.suite.policy == suite])
        if baseline:
            before = _row([o for o in sampled(baseline.outcomes) if o.suite.policy == suite])
            rows.append([suite, before[0], after[0], before[1], after[1]])
        else:
            rows.append([suite, *after])
    mixed = [o for o in cases if 0 < o.pass_rate < 1]
    lines = "\n".join(f"- `{o.case.id}` ({o.suite.policy}): expects {o.case.expect_label}; {o.describe_trials()}"
                      for o in mixed)
    return ["## Sampled trials", _how(settings, cases), tabulate(rows, headers=headers, tablefmt="github"),
            f"### Cases whose trials disagree ({len(mixed)})", fold(lines, len(mixed))]


def terminal_line(candidate: RunResult) -> str | None:
    cases = sampled(candidate.outcomes)
    if not cases:
        return None
    mean = sum(o.pass_rate for o in cases) / len(cases)
    every = sum(o.pass_rate == 1 for o in cases)
    return (f"sampled trials: {len(cases[0].trials)} per case; {every}/{len(cases)} cases passed every trial, "
            f"mean pass rate {mean:.0%}")
