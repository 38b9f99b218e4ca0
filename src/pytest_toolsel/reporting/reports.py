"""Before/after reports: the results document (results.json) for machines, accuracy.md for people
(and PR comments). Writing them to files is report_files.py's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from tabulate import tabulate

from ..verdicts.evaluation import Outcome, RunResult
from ..verdicts.judge import malformed_reasons
from . import invariance, sampled
from .confusion import TOP_LABELS
from .stats import mcnemar_exact, wilson_interval
from .where_calls_went import by_policy, markdown_section as where_calls_went_section, policy_tables_record, policy_views


@dataclass(frozen=True)
class Comparison:
    """The candidate against the baseline on the cases both ran."""

    fixed: tuple[Outcome, ...]
    regressed: tuple[Outcome, ...]
    still_failing: tuple[Outcome, ...]

    @property
    def p_value(self) -> float:
        return mcnemar_exact(len(self.fixed), len(self.regressed))


def compare(candidate: RunResult, baseline: RunResult) -> Comparison:
    before = baseline.by_key()
    fixed, regressed, failing = [], [], []
    for outcome in candidate.outcomes:
        old = before.get(outcome.key)
        if old is None:
            continue
        if outcome.passed and not old.passed:
            fixed.append(outcome)
        elif old.passed and not outcome.passed:
            regressed.append(outcome)
        elif not outcome.passed:
            failing.append(outcome)
    return Comparison(tuple(fixed), tuple(regressed), tuple(failing))


def _fraction(hits: int, total: int) -> str:
    if not total:
        return "-"
    low, high = wilson_interval(hits, total)
    return f"{hits}/{total} = {hits / total:.0%} [{low:.0%}, {high:.0%}]"


def score(outcomes: Iterable[Outcome]) -> str:
    """Tool-selection accuracy: the verdict."""
    outcomes = list(outcomes)
    return _fraction(sum(o.passed for o in outcomes), len(outcomes))


def with_calls(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The cases whose answer made at least one call: the base of the valid-call share (a case that
    rightly calls nothing has no call to be valid or not)."""
    return [o for o in outcomes if o.made_call]


def with_expected_calls(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The cases that give every expected argument as a plain value: the base of exact-call accuracy."""
    return [o for o in outcomes if o.verdict.exact is not None]


def valid_counts(outcomes: Iterable[Outcome]) -> tuple[int, int]:
    """(cases whose calls are all valid, cases that made a call)."""
    made = with_calls(outcomes)
    return sum(o.calls_valid for o in made), len(made)


def exact_counts(outcomes: Iterable[Outcome]) -> tuple[int, int]:
    """(cases answered with exactly the expected calls, cases that give their expected calls)."""
    given = with_expected_calls(outcomes)
    return sum(bool(o.verdict.exact) for o in given), len(given)


def valid_score(outcomes: Iterable[Outcome]) -> str:
    return _fraction(*valid_counts(outcomes))


def exact_score(outcomes: Iterable[Outcome]) -> str:
    return _fraction(*exact_counts(outcomes))


Metric = tuple[str, Callable[[Iterable[Outcome]], str]]
SELECTION: Metric = ("tool selection", score)
CALL_METRICS: tuple[Metric, ...] = (SELECTION, ("valid calls", valid_score), ("exact calls", exact_score))


def _share_record(hits: int, total: int, hit_name: str, total_name: str, share_name: str) -> dict:
    interval = list(wilson_interval(hits, total)) if total else None
    return {hit_name: hits, total_name: total, share_name: hits / total if total else None,
            f"{share_name}_ci95": interval}


def call_quality_record(outcomes: Iterable[Outcome]) -> dict:
    """Valid-call share (over cases that made a call) and exact-call accuracy (over cases with expected calls)."""
    outcomes = list(outcomes)
    return {
        "valid_calls": _share_record(*valid_counts(outcomes), "valid", "cases_with_calls", "share"),
        "exact_calls": _share_record(*exact_counts(outcomes), "exact", "cases_with_expected_calls", "accuracy"),
    }


def policy_record(outcomes: list[Outcome]) -> dict:
    passed = sum(o.passed for o in outcomes)
    return {
        "passed": passed,
        "total": len(outcomes),
        "accuracy": passed / len(outcomes),
        **call_quality_record(outcomes),
        **policy_tables_record(outcomes),
    }


def run_record(run: RunResult) -> dict:
    low, high = wilson_interval(run.passed, run.total)
    return {
        "model": run.model,
        "passed": run.passed,
        "total": run.total,
        "accuracy": run.accuracy,
        "accuracy_ci95": [low, high],
        **call_quality_record(run.outcomes),
        **sampled.sampled_run_record(run.outcomes),
        "policies": {policy: policy_record(outcomes) for policy, outcomes in sorted(by_policy(run).items())},
        "cases": [case_record(outcome) for outcome in run.outcomes],
    }


def case_record(outcome: Outcome) -> dict:
    record = {
        "id": outcome.case.id,
        "test": f"{outcome.suite.path}::{outcome.case.id}",  # the pytest node id
        "suite": outcome.suite.policy,
        "file": str(outcome.suite.path),
        "prompt": outcome.case.prompt,
        "expected": sorted(outcome.case.expect),
        "called": list(outcome.verdict.called),
        "passed": outcome.passed,
        "reasons": list(outcome.verdict.reasons),
        "schema_problems": list(outcome.verdict.schema_problems),
        "exact_call": outcome.verdict.exact,
        "failed_checks": [
            {"tool": failure.check.tool, "argument": failure.check.argument, "check": failure.check.operator,
             "expected": failure.check.expected, "written": failure.written if failure.given else None,
             "given": failure.given}
            for failure in outcome.verdict.failed_checks
        ],
        "calls": [call.as_dict() for call in outcome.parsed.calls],
        "output": outcome.output,
        "cut_at": outcome.cut_at,
        "tool_probabilities": outcome.choice.probabilities if outcome.choice else None,
        "margin": outcome.margin,
    }
    if outcome.case.conversation:
        record["conversation"] = list(outcome.case.conversation)
    return {**record, **sampled.trials_record(outcome)}


def fragile_passes(run: RunResult, fragile_margin: float) -> list[Outcome]:
    """Passing cases whose expected tool only narrowly beat the next one: the next to flip."""
    fragile = [o for o in run.outcomes if o.passed and o.margin is not None and o.margin < fragile_margin]
    return sorted(fragile, key=lambda o: o.margin)


def results_document(
    candidate: RunResult, baseline: RunResult | None, settings: dict, fragile_margin: float = 0.3,
    finished: bool = True,
) -> dict:
    """`finished` is false in the document written as soon as the candidate's answers are judged, while
    the session still has the before model to evaluate: a results.json left so is from a session that
    ended before that. The runs' invariance variants are counted apart (`invariance`)."""
    variants = {"candidate": invariance.invariance_record(candidate, case_record),
                "baseline": invariance.invariance_record(baseline, case_record)}
    candidate, baseline = invariance.as_written(candidate), invariance.as_written(baseline)
    document = {
        "finished": finished,
        "candidate": run_record(candidate),
        "baseline": run_record(baseline) if baseline else None,
        "generation": settings,
        "fragile_margin": fragile_margin,
        "fragile": [o.case.id for o in fragile_passes(candidate, fragile_margin)],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if variants["candidate"]:
        document["invariance"] = variants
    if baseline:
        comparison = compare(candidate, baseline)
        document["comparison"] = {
            "fixed": [o.case.id for o in comparison.fixed],
            "regressed": [o.case.id for o in comparison.regressed],
            "mcnemar_p": comparison.p_value,
        }
    return document


def _table(
    candidate: RunResult,
    baseline: RunResult | None,
    group: Callable[[Outcome], str],
    title: str,
    fmt: str,
    metrics: tuple[Metric, ...] = (SELECTION,),
    top: int | None = None,
) -> str:
    """A row per group; with `top`, the `top` groups of the most cases and one row for the rest (a
    dataset whose rows bring their own tools expects hundreds of them)."""
    rest = None
    if top is not None:
        group, rest = _capped(group, candidate.outcomes, top)
    after = candidate.grouped(group)
    before = baseline.grouped(group) if baseline else {}
    if len(metrics) == 1:
        headers = [title, "before", "after"] if baseline else [title, "accuracy"]
    elif baseline:
        headers = [title, *(f"{name} {when}" for name, _ in metrics for when in ("before", "after"))]
    else:
        headers = [title, *(name for name, _ in metrics)]
    rows = []
    for name in sorted(after, key=lambda name: (name == rest, name)):
        row = [name]
        for _, measure in metrics:
            row += ([measure(before.get(name, []))] if baseline else []) + [measure(after[name])]
        rows.append(row)
    return tabulate(rows, headers=headers, tablefmt=fmt)


def _capped(group: Callable[[Outcome], str], outcomes: Iterable[Outcome], top: int) -> tuple[Callable[[Outcome], str], str | None]:
    """`group` with the groups beyond the `top` of the most cases taken together, and that group's
    name (None when there are no more than `top` groups)."""
    sizes = Counter(group(outcome) for outcome in outcomes)
    if len(sizes) <= top:
        return group, None
    kept = {name for name, _ in sizes.most_common(top)}
    rest = f"the other {len(sizes) - top}"
    return (lambda outcome: name if (name := group(outcome)) in kept else rest), rest


def overall_table(
    candidate: RunResult, baseline: RunResult | None, fmt: str, metrics: tuple[Metric, ...] = (SELECTION,)
) -> str:
    runs = [("before", baseline), ("after", candidate)] if baseline else [("after", candidate)]
    rows = [[when, run.model, *(measure(run.outcomes) for _, measure in metrics)] for when, run in runs]
    headers = ["passed = accuracy [95% CI]"] if len(metrics) == 1 else [f"{name} [95% CI]" for name, _ in metrics]
    return tabulate(rows, headers=["", "model", *headers], tablefmt=fmt)


CALL_METRICS_LEGEND = (
    "Tool selection is the verdict. Valid calls: of the cases whose answer made a call, those whose every "
    "call parses and fits its tool's schema (declared tool and arguments, required arguments, JSON types, "
    "enums). Exact calls: of the cases that say exactly which calls are right (every expected argument a "
    "plain value in `args:`, or no arguments to give, or no call expected), those whose calls equal the "
    "expected calls exactly (names and arguments, in any order)."
)


def significance_line(candidate: RunResult, baseline: RunResult | None) -> str:
    if not baseline:
        return "No before model was evaluated (--no-baseline)."
    comparison = compare(candidate, baseline)
    return (
        f"Fixed {len(comparison.fixed)}, regressed {len(comparison.regressed)}; "
        f"exact McNemar p = {comparison.p_value:.3g} on the discordant cases."
    )


def terminal_summary(candidate: RunResult, baseline: RunResult | None) -> str:
    extra = [line for line in [*invariance.terminal_lines(candidate), sampled.terminal_line(candidate)] if line]
    candidate, baseline = invariance.as_written(candidate), invariance.as_written(baseline)
    by_suite = _table(candidate, baseline, lambda o: o.suite.policy, "suite", "simple")
    parts = [overall_table(candidate, baseline, "simple"), by_suite, significance_line(candidate, baseline)]
    return "\n\n".join(parts + (["\n".join(extra)] if extra else []))


WHY_SHOWN = 3  # reasons a case line gives; an answer of a dozen broken calls would fill a screen


def what_went_wrong(outcome: Outcome) -> str:
    """What the tools called do not say about a miss: the part of the answer that could not be read,
    and each failed argument check with the value written (`datetime: expected 2026-06-10T16:00, wrote
    2026-06-10T15:00`). Empty for a plain wrong choice of tool."""
    several = len(outcome.case.expect) > 1
    reasons = malformed_reasons(outcome.parsed) + [f.describe(several) for f in outcome.verdict.failed_checks]
    more = [f"{len(reasons) - WHY_SHOWN} more in results.json"] if len(reasons) > WHY_SHOWN else []
    return "; ".join(reasons[:WHY_SHOWN] + more)


def _calls(outcome: Outcome) -> str:
    called = ", ".join(outcome.verdict.called) or "no tool"
    why = "" if outcome.passed else what_went_wrong(outcome)
    return f"{called} ({why})" if why else called


def _case_line(outcome: Outcome, before: Outcome | None) -> str:
    line = f"- `{outcome.case.id}` ({outcome.suite.policy}): {outcome.case.prompt!r}, expects {outcome.case.expect_label}"
    if before is not None:
        line += f"; before called {_calls(before)}"
    return line + f"; now calls {_calls(outcome)}"


def _schema_line(outcome: Outcome) -> str:
    verdict = "selection passed" if outcome.passed else "selection failed"
    return f"- `{outcome.case.id}` ({outcome.suite.policy}, {verdict}): {'; '.join(outcome.verdict.schema_problems)}"


def _fragile_line(outcome: Outcome) -> str:
    others = sorted(
        ((name, p) for name, p in outcome.choice.probabilities.items() if name not in outcome.case.expect),
        key=lambda item: -item[1],
    )
    rival = f"{others[0][0]} {others[0][1]:.2f}" if others else "-"
    return (
        f"- `{outcome.case.id}` ({outcome.suite.policy}): {outcome.case.prompt!r}, expects "
        f"{outcome.case.expect_label}; margin {outcome.margin:.2f} over {rival}"
    )


LONG_LIST = 10


def _collapsed_if_long(lines: str, count: int) -> str:
    """A long case list folds away (GitHub renders <details>), so the report reads well as a PR comment."""
    if not count:
        return "None."
    if count <= LONG_LIST:
        return lines
    return f"<details><summary>{count} cases</summary>\n\n{lines}\n\n</details>"


def markdown_report(
    candidate: RunResult, baseline: RunResult | None, fragile_margin: float = 0.3, heatmap: str | None = None,
    settings: dict | None = None,
) -> str:
    """accuracy.md: its size grows with the number of cases, never with the square of the tools. The
    runs' invariance variants and sampled trials get sections of their own, at the end."""
    extra = [*invariance.markdown_section(candidate, baseline, _collapsed_if_long),
             *sampled.markdown_section(candidate, baseline, settings, _collapsed_if_long)]
    candidate, baseline = invariance.as_written(candidate), invariance.as_written(baseline)
    sections = [
        "# Tool-selection accuracy",
        overall_table(candidate, baseline, "github", CALL_METRICS),
        significance_line(candidate, baseline)
        + " Intervals are 95% Wilson intervals: with 20 cases a suite's accuracy is only known to about +-9 points.",
        CALL_METRICS_LEGEND,
        *where_calls_went_section(policy_views(candidate, baseline), baseline is not None, heatmap),
        "## Per suite",
        _table(candidate, baseline, lambda o: o.suite.policy, "suite", "github", CALL_METRICS),
        "## Per expected tool",
        _table(candidate, baseline, lambda o: o.case.expect_label, "expected tool", "github", top=TOP_LABELS),
    ]
    before = baseline.by_key() if baseline else {}
    if baseline:
        comparison = compare(candidate, baseline)
        # What a reviewer must see first: what this change broke.
        lists = [("Regressed", comparison.regressed), ("Still failing", comparison.still_failing), ("Fixed", comparison.fixed)]
    else:
        lists = [("Failing", tuple(o for o in candidate.outcomes if not o.passed))]
    for title, outcomes in lists:
        sections.append(f"## {title} ({len(outcomes)})")
        sections.append(_collapsed_if_long("\n".join(_case_line(o, before.get(o.key)) for o in outcomes), len(outcomes)))
    invalid = [o for o in candidate.outcomes if o.verdict.schema_problems]
    sections.append(f"## Calls that do not fit their tool's schema ({len(invalid)})")
    sections.append(_collapsed_if_long("\n".join(_schema_line(o) for o in invalid), len(invalid)))
    if any(o.choice for o in candidate.outcomes):
        fragile = fragile_passes(candidate, fragile_margin)
        sections.append(f"## Fragile passes ({len(fragile)})")
        sections.append(
            f"Passing cases where the expected tool's probability leads the best other tool's by less than "
            f"{fragile_margin:.2f} (probabilities over the declared tools, scored right after `call:`)."
        )
        sections.append(_collapsed_if_long("\n".join(_fragile_line(o) for o in fragile), len(fragile)))
    return "\n\n".join(sections + extra) + "\n"

