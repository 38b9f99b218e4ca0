"""Invariance in the reports: per policy and variant (cases/variants.py), how many cases keep their
verdict when their tools are declared otherwise, and which flip.

A run holds the cases as written and their variants (`paris[shuffled]`) side by side. Accuracy, the
before/after comparison and the tables count the cases as written (`as_written`); each variant is
counted here, beside the case it varies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

from tabulate import tabulate

from ..cases.variants import DISTRACTORS, VARIANTS, plain_id
from ..verdicts.evaluation import Outcome, RunResult, grouped

Pair = tuple[Outcome, Outcome]  # (the case as written, its variant)


def as_written(run: RunResult | None) -> RunResult | None:
    """The run without its variants."""
    if run is None:
        return None
    return replace(run, outcomes=tuple(o for o in run.outcomes if o.case.variant is None))


def by_variant(outcomes: Iterable[Outcome]) -> dict[str | None, list[Outcome]]:
    """Outcomes by the variant they are (None: the cases as written first), each in run order."""
    groups = grouped(list(outcomes), lambda outcome: outcome.case.variant)
    as_written = groups.pop(None, None)
    return {None: as_written, **groups} if as_written else groups


@dataclass(frozen=True)
class VariantCount:
    policy: str
    variant: str
    pairs: tuple[Pair, ...]
    unpaired: int  # variants whose case as written was not run (deselected), so nothing to compare

    @property
    def kept(self) -> int:
        return sum(written.passed == variant.passed for written, variant in self.pairs)

    @property
    def flipped(self) -> list[Pair]:
        return [(written, variant) for written, variant in self.pairs if written.passed != variant.passed]


def variant_counts(run: RunResult | None) -> list[VariantCount]:
    """A count per policy and variant, policies by name, variants in their own order."""
    if run is None:
        return []
    written = {(str(o.suite.path), o.case.id): o for o in run.outcomes if o.case.variant is None}
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in run.outcomes:
        if outcome.case.variant is not None:
            groups.setdefault((outcome.suite.policy, outcome.case.variant), []).append(outcome)
    counts = []
    for (policy, variant), outcomes in sorted(groups.items(), key=_policy_then_variant):
        found = [(written.get((str(o.suite.path), plain_id(o.case))), o) for o in outcomes]
        pairs = tuple((w, o) for w, o in found if w is not None)
        counts.append(VariantCount(policy, variant, pairs, len(found) - len(pairs)))
    return counts


def _policy_then_variant(group: tuple[tuple[str, str], list]) -> tuple[str, int]:
    (policy, variant), _ = group
    return policy, VARIANTS.index(variant)


def _declared(variant: Outcome, written: Outcome | None = None) -> str:
    """The variant's tools as declared; for distractors, the tools added."""
    if variant.case.variant == DISTRACTORS and written is not None:
        own = set(written.suite.tool_names)
        return "added " + ", ".join(name for name in variant.suite.tool_names if name not in own)
    return "declared " + ", ".join(variant.suite.tool_names)


def _verdict(outcome: Outcome) -> dict:
    return {"passed": outcome.passed, "called": list(outcome.verdict.called)}


def invariance_record(run: RunResult | None, case_record: Callable[[Outcome], dict]) -> dict | None:
    """Per policy and variant the counts and the flipped cases; every variant's own case record."""
    counts = variant_counts(run)
    if not counts:
        return None
    policies: dict[str, dict] = {}
    for count in counts:
        policies.setdefault(count.policy, {})[count.variant] = {
            "cases": len(count.pairs),
            "kept": count.kept,
            "flipped": [{"id": w.case.id, "test": f"{v.suite.path}::{v.case.id}", "as_written": _verdict(w),
                         "variant": {**_verdict(v), "tools": list(v.suite.tool_names)}} for w, v in count.flipped],
            "without_case_as_written": count.unpaired,
        }
    variants = [o for o in run.outcomes if o.case.variant is not None]
    return {"policies": policies, "cases": [
        {**case_record(o), "variant": o.case.variant, "of": plain_id(o.case), "tools": list(o.suite.tool_names)}
        for o in variants
    ]}


LEGEND = (
    "Each variant asks a case again, judged by the same expectation, with its tools declared otherwise: "
    "`shuffled` in another seeded order, `distractors` with tools of other policies (or the case file's "
    "`distractors:`) placed among them. A case keeps its verdict when it passes (or fails) both as written "
    "and as the variant. The figures above count the cases as written."
)


def markdown_section(candidate: RunResult, baseline: RunResult | None, fold: Callable[[str, int], str]) -> list[str]:
    """The invariance table and, per policy and variant, the flipped cases (`fold` folds a long list)."""
    counts = variant_counts(candidate)
    if not counts:
        return []
    before = {(c.policy, c.variant): c for c in variant_counts(baseline)}
    headers = ["suite", "variant", "kept", "passed as written → as variant"] + (["kept before"] if baseline else [])
    rows = []
    for count in counts:
        passed = (sum(w.passed for w, _ in count.pairs), sum(v.passed for _, v in count.pairs))
        row = [count.policy, count.variant, f"{count.kept}/{len(count.pairs)}", f"{passed[0]} → {passed[1]}"]
        if baseline:
            old = before.get((count.policy, count.variant))
            row.append(f"{old.kept}/{len(old.pairs)}" if old else "-")
        rows.append(row)
    sections = ["## Invariance", LEGEND, tabulate(rows, headers=headers, tablefmt="github")]
    for count in counts:
        if count.flipped:
            lines = [_flip_line(w, v) for w, v in count.flipped]
            title = f"### Flipped under {count.variant}: {count.policy} ({len(lines)})"
            sections += [title, fold("\n".join(lines), len(lines))]
        if count.unpaired:
            sections.append(f"{count.unpaired} {count.variant} variants of {count.policy} ran without their case as "
                            "written (deselected), so they are not counted.")
    return sections


def _flip_line(written: Outcome, variant: Outcome) -> str:
    went = "passes as written, fails" if written.passed else "fails as written, passes"
    called = ", ".join(variant.verdict.called) or "no tool"
    return (f"- `{written.case.id}`: {written.case.prompt!r}, expects {written.case.expect_label}; {went} as "
            f"{variant.case.variant} ({_declared(variant, written)}), calling {called}")


def terminal_lines(candidate: RunResult) -> list[str]:
    """`invariance of policy: shuffled kept 2/3 (flipped: paris), distractors kept 3/3`."""
    per_policy: dict[str, list[str]] = {}
    for count in variant_counts(candidate):
        flipped = [w.case.id for w, _ in count.flipped]
        shown = ", ".join(flipped[:5]) + (f" and {len(flipped) - 5} more" if len(flipped) > 5 else "")
        part = f"{count.variant} kept {count.kept}/{len(count.pairs)}" + (f" (flipped: {shown})" if flipped else "")
        unpaired = f", {count.unpaired} without their case as written" if count.unpaired else ""
        per_policy.setdefault(count.policy, []).append(part + unpaired)
    return [f"invariance of {policy}: {', '.join(parts)}" for policy, parts in per_policy.items()]
