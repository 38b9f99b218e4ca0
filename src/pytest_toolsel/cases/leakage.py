"""The leakage guard: a held-out prompt that is also a training prompt cannot grade the model.

Prompts are compared normalised (case and whitespace ignored), across every suite of the session:
a case of one file may leak from the training examples of another.
"""

from __future__ import annotations

from typing import Iterable

from .suite import Case, Suite, normalise_prompt


def training_prompts(suites: Iterable[Suite]) -> dict[str, str]:
    """Each normalised training prompt -> where it is first trained (`path train[index]`)."""
    trained: dict[str, str] = {}
    for suite in suites:
        for index, example in enumerate(suite.train):
            trained.setdefault(normalise_prompt(example.prompt), training_location(suite, index))
    return trained


def training_location(suite: Suite, index: int) -> str:
    if suite.path.suffix == ".jsonl":  # a dataset row: its line
        return f"{suite.path} row {suite.train_lines[index]}"
    return f"{suite.path} train[{index}]"


def leak_message(suite: Suite, case: Case, source: str) -> str:
    """The collection error of a case whose prompt was trained at `source`."""
    entry = f"row {case.line}" if suite.path.suffix == ".jsonl" else f"cases[{case.index}]"
    return (
        f"{suite.path}: {entry} (id '{case.id}'): field 'prompt': "
        f"{case.prompt!r} is also a training prompt ({source}); "
        "a model cannot be graded on what it was trained on"
    )
