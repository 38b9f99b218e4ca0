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
            trained.setdefault(normalise_prompt(example.prompt), f"{suite.path} train[{index}]")
    return trained


def leak_message(suite: Suite, case: Case, source: str) -> str:
    """The collection error of a case whose prompt was trained at `source`."""
    return (
        f"{suite.path}: cases[{case.index}] (id '{case.id}'): field 'prompt': "
        f"{case.prompt!r} is also a training prompt ({source}); "
        "a model cannot be graded on what it was trained on"
    )
