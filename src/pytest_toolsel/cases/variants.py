"""Invariance variants of a held-out case: the same question, judged by the same expectation, with its
tools declared otherwise. A model that picks a tool by its place in the list, or that is pulled to a
tool it was not trained with, passes the case as written and fails its variant.

    shuffled     the case's tools in another seeded order (never the order as written)
    distractors  the case's tools, in their order, with k other tools placed among them (seeded)

A variant is a (Suite, Case) pair like any other: the suite holds the variant's tools, the case keeps
its prompt and expectation and gets the id `case[variant]`. Batched generation, the results cache
(keyed by the tools as declared) and the verdict take it as they take the case as written.

Also read here: a case file's `variants:` and `distractors:` keys.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import replace
from typing import Any, Iterable, Sequence

from .suite import Case, Suite, Tool
from .tools import ToolsReader

SHUFFLED = "shuffled"
DISTRACTORS = "distractors"
VARIANTS = (SHUFFLED, DISTRACTORS)


class VariantError(ValueError):
    """A variant asked for that cannot be made (no distractor tools to add)."""


def unknown_variant(name: Any) -> str | None:
    """Why `name` is no variant, with the closest one; None when it is one."""
    if name in VARIANTS:
        return None
    close = difflib.get_close_matches(str(name), VARIANTS, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(VARIANTS)}"
    return f"unknown variant {name!r}; {hint}"


def variant_id(case_id: str, name: str) -> str:
    return f"{case_id}[{name}]"


def plain_id(case: Case) -> str:
    """The id of the case as written that `case` is a variant of (its own id when it is none)."""
    return case.id.removesuffix(f"[{case.variant}]") if case.variant else case.id


def as_variant(suite: Suite, case: Case, name: str, tools: Sequence[Tool]) -> tuple[Suite, Case]:
    """The case asked with `tools` instead of its suite's, as the variant `name`."""
    return replace(suite, tools=tuple(tools)), replace(case, id=variant_id(case.id, name), variant=name)


def _random(seed: int, suite: Suite, case: Case, name: str) -> random.Random:
    # A string seed goes through SHA-512, not Python's salted hash: every process (xdist workers
    # included) draws the same, and one case's variant does not depend on which others are selected.
    return random.Random(f"{seed}\0{suite.policy}\0{case.id}\0{name}")


def shuffled(suite: Suite, case: Case, seed: int) -> tuple[Suite, Case] | None:
    """The case with its suite's tools in another seeded order; None for a suite of one tool."""
    written = list(suite.tools)
    if len(written) < 2:
        return None
    draw, order = _random(seed, suite, case, SHUFFLED), list(written)
    while order == written:  # the order as written would be a variant that cannot flip
        draw.shuffle(order)
    return as_variant(suite, case, SHUFFLED, order)


def distractor_pool(suite: Suite, collected: Iterable[Suite]) -> tuple[Tool, ...]:
    """The tools a case of `suite` may be distracted with: its file's `distractors:`, else every other
    collected suite's tools that `suite` does not declare (by name; files in path order, so that the
    pool does not depend on the order of pytest's arguments)."""
    if suite.distractors:
        return suite.distractors
    declared = set(suite.tool_names)
    pool: dict[str, Tool] = {}
    for other in sorted((s for s in collected if s is not suite), key=lambda s: (str(s.path), s.policy)):
        for tool in other.tools:
            if tool.name not in declared:
                pool.setdefault(tool.name, tool)
    return tuple(pool[name] for name in sorted(pool))


def with_distractors(suite: Suite, case: Case, pool: Sequence[Tool], count: int, seed: int) -> tuple[Suite, Case]:
    """The case with `count` tools of `pool` (all of them when it has fewer) placed among its suite's
    tools at seeded places, the suite's own tools keeping their order."""
    if not pool:
        raise VariantError(
            f"{suite.path}: the {DISTRACTORS} variant has no tools to add: give the case file a "
            "'distractors:' list of tools, or collect another policy whose tools can serve"
        )
    draw = _random(seed, suite, case, DISTRACTORS)
    tools = list(suite.tools)
    for tool in draw.sample(list(pool), min(count, len(pool))):
        tools.insert(draw.randrange(len(tools) + 1), tool)
    return as_variant(suite, case, DISTRACTORS, tools)


def variant_of(name: str, suite: Suite, case: Case, collected: Iterable[Suite], *, distractors: int,
               seed: int) -> tuple[Suite, Case] | None:
    """The variant `name` of a case (None where it cannot differ from the case as written)."""
    if name == SHUFFLED:
        return shuffled(suite, case, seed)
    return with_distractors(suite, case, distractor_pool(suite, collected), distractors, seed)


class VariantKeysReader(ToolsReader):
    """A case file's `variants:` (names) and `distractors:` (tools, as `tools:` declares them)."""

    def read_variants(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        names = self.read_list(value, "variants")
        for index, name in enumerate(names):
            problem = unknown_variant(name)
            if problem:
                raise self.error(problem, ("variants", index), where="variants")
        return tuple(name for name in VARIANTS if name in names)

    def read_distractors(self, value: Any, declared: Iterable[str]) -> tuple[Tool, ...]:
        if value is None:
            return ()
        tools = self.read_tools(value, key="distractors")
        declared = set(declared)
        for index, tool in enumerate(tools):
            if tool.name in declared:
                raise self.error(
                    f"'{tool.name}' is one of the policy's own tools; a distractor must be another tool",
                    ("distractors", index, "name"), f"distractors[{index}] ({tool.name})",
                )
        return tools
