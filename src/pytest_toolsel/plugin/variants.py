"""Invariance variants as tests (cases/variants.py): once everything is collected, each case gets a
test per variant that its case file (`variants:`) or --variants asks for, right after its own test.

They are added before pytest's own selection (-k, -m, --lf) runs, so that `-k shuffled` selects
variants, and each variant is the same whatever is selected: its distractors may come from any
collected file. They go through the same batched pass, results cache and verdict as every case.
"""

from __future__ import annotations

import pytest

from ..cases.suite import Suite
from ..cases.variants import VARIANTS, VariantError, variant_of
from .items import CaseItem
from .options import Options


def wanted(suite: Suite, options: Options) -> list[str]:
    """The variants a suite's cases get: its file's `variants:` and --variants, in their own order."""
    return [name for name in VARIANTS if name in suite.variants or name in options.variants]


def add_variant_items(
    items: list[pytest.Item], suites: list[Suite], options: Options, notes: list[str]
) -> tuple[dict[pytest.Collector, list[pytest.Item]], dict[pytest.Collector, list[str]]]:
    """Each case's variant tests inserted after it in `items`. Returns, per case file, the tests added
    and the variants that cannot be made (each reason once); adds a note per suite where one cannot differ."""
    added: dict[pytest.Collector, list[pytest.Item]] = {}
    problems: dict[pytest.Collector, list[str]] = {}
    extended: list[pytest.Item] = []
    for item in items:
        extended.append(item)
        if not isinstance(item, CaseItem) or item.case.variant is not None:
            continue
        for name in wanted(item.suite, options):
            try:
                variant = variant_of(name, item.suite, item.case, suites, distractors=options.distractor_count,
                                     seed=options.variant_seed)
            except VariantError as problem:
                reasons = problems.setdefault(item.parent, [])
                if str(problem) not in reasons:
                    reasons.append(str(problem))
                continue
            if variant is None:
                note = f"{item.suite.path}: {item.suite.policy} declares one tool, so its cases have no {name} variant"
                if note not in notes:
                    notes.append(note)
                continue
            extended.append(CaseItem.for_case(item.parent, *variant))
            added.setdefault(item.parent, []).append(extended[-1])
    items[:] = extended
    return added, problems
