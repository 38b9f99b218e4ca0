"""Prompts rendered and answered: every case's output, and its tool choice when asked for.

Cases that share their tools and system text share their developer turn, so they are answered
together (`per_policy`), whichever files they come from.
"""

from __future__ import annotations

import json
from typing import Callable, Sequence, TypeVar

from ..cases.suite import Case, Suite
from ..functiongemma.chat_format import prompt_messages
from ..models.loading import LoadedModel
from .confidence import choice_from_scores, tool_call_tokens, tool_choices
from .generation import GenerationSettings, can_score_continuations, generate, generate_scored
from .results_cache import Answer, AnswerCache

T = TypeVar("T")


def render_prompt(tokenizer, suite: Suite, case: Case) -> str:
    return tokenizer.apply_chat_template(
        prompt_messages(case.prompt, suite.system, case.conversation),
        tools=suite.tool_schemas,
        add_generation_prompt=True,
        tokenize=False,
    )


def per_policy(cases: Sequence[tuple[Suite, Case]], work: Callable[[Suite, list[int]], list[T]]) -> list[T]:
    """`work(suite, indices)` once per distinct set of tools and system text, its results put back in the
    cases' order.

    Prompts with the same tools and system text share their developer turn, the long prefix that
    generation and scoring run once per call, and fill one batch together even from several files.
    """
    groups: dict[str, list[int]] = {}
    for index, (suite, _) in enumerate(cases):
        key = json.dumps({"tools": suite.tool_schemas, "system": suite.system}, sort_keys=True)
        groups.setdefault(key, []).append(index)
    results: list = [None] * len(cases)
    for indices in groups.values():
        for index, result in zip(indices, work(cases[indices[0]][0], indices)):
            results[index] = result
    return results


def answer(
    loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], settings: GenerationSettings, *, confidence: bool
) -> list[Answer]:
    prompts = [render_prompt(loaded.tokenizer, suite, case) for suite, case in cases]

    def policy_answers(suite: Suite, indices: list[int]) -> list[Answer]:
        texts = [prompts[i] for i in indices]
        if not confidence:
            return [Answer(output) for output in generate(loaded, texts, settings)]
        names = [tool.name for tool in suite.tools]
        calls = tool_call_tokens(loaded.tokenizer, texts, names) if can_score_continuations(loaded) else None
        if calls is None or len(names) < 2:
            outputs = generate(loaded, texts, settings)
            choices = tool_choices(loaded, texts, [names] * len(texts), settings.batch_size)
        else:
            # The tools' calls are scored from the same pass over each prompt that generation makes.
            outputs, scores = generate_scored(loaded, texts, settings, calls)
            choices = [choice_from_scores(names, row) for row in scores]
        return [Answer(output, choice) for output, choice in zip(outputs, choices)]

    return per_policy(cases, policy_answers)


def cached_answers(
    load: Callable[[], LoadedModel],
    cases: Sequence[tuple[Suite, Case]],
    settings: GenerationSettings,
    *,
    confidence: bool,
    cache: AnswerCache | None = None,
) -> tuple[list[Answer], list[int]]:
    """Every case's answer, from the cache where it has one; the model is loaded (`load()`) only when
    some case is not cached. Returns the answers and the indices of those generated now."""
    answers: list[Answer | None] = [cache.get(suite, case) if cache else None for suite, case in cases]
    missing = [index for index, found in enumerate(answers) if found is None]
    if missing:
        fresh = answer(load(), [cases[i] for i in missing], settings, confidence=confidence)
        for index, new in zip(missing, fresh):
            answers[index] = new
            if cache:
                cache.put(*cases[index], new)
        if cache:
            cache.save()
    return answers, missing
