"""Prompts rendered and answered: every case's output, and its tool choice when asked for.

Cases that share their tools and system text share their developer turn, so they are answered
together, whichever files they come from; cases whose tools few others share are pooled
(`answer_batches`).
"""

from __future__ import annotations

import json
from typing import Callable, Sequence

from ..cases.suite import Case, Suite
from ..functiongemma.chat_format import prompt_messages
from ..models.loading import LoadedModel
from .confidence import choice_from_scores, tool_call_tokens, tool_choices
from .generation import GenerationSettings, can_score_continuations, generate, generate_scored
from .progress import Progress, ProgressSink
from .results_cache import Answer, AnswerCache
from .sampling import Sampling, sampled_answers


def render_prompt(tokenizer, suite: Suite, case: Case) -> str:
    return tokenizer.apply_chat_template(
        prompt_messages(case.prompt, suite.system, case.conversation),
        tools=suite.tool_schemas,
        add_generation_prompt=True,
        tokenize=False,
    )


# Cases whose tools and system text fewer than this many others share (a dataset where every row
# has its own tools) are pooled with other such cases, so that they still fill batches.
MIN_SHARED_GROUP = 4
# Each row of a pool is fed only its own tools' calls, but every prompt is tokenized with, and gets
# the parting logit of, every tool name of the pool: this bounds that extra work.
MAX_POOLED_NAMES = 64


def answer_batches(cases: Sequence[tuple[Suite, Case]]) -> list[list[int]]:
    """The cases' indices, split into the groups answered together.

    Prompts with the same tools and system text share their developer turn, the long prefix that
    generation and scoring run once per group, and fill one group together even from several files.
    The rest, in groups of fewer than MIN_SHARED_GROUP, are pooled: a pool's prompts share whatever
    prefix they have in common (exactly, as any group's; often just the turn's opening tokens, which
    costs nothing) and fill batches together instead of one small batch per tool set.
    """
    groups: dict[str, list[int]] = {}
    for index, (suite, _) in enumerate(cases):
        key = json.dumps({"tools": suite.tool_schemas, "system": suite.system}, sort_keys=True)
        groups.setdefault(key, []).append(index)
    shared = [indices for indices in groups.values() if len(indices) >= MIN_SHARED_GROUP]
    pools: list[list[int]] = []
    names: set[str] = set()
    for indices in (indices for indices in groups.values() if len(indices) < MIN_SHARED_GROUP):
        group_names = set(cases[indices[0]][0].tool_names)
        if pools and len(names | group_names) <= MAX_POOLED_NAMES:
            pools[-1].extend(indices)
            names |= group_names
        else:
            pools.append(list(indices))
            names = group_names
    return shared + pools


def answer(
    loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], settings: GenerationSettings, *, confidence: bool,
    progress: Progress | None = None, sampling: Sampling | None = None,
) -> list[Answer]:
    """Every case's answer, group by group (`answer_batches`); `progress` hears of every chunk. With
    `sampling`, each answer holds the case's sampled trials (sampling.py) instead of a greedy answer."""
    on_chunk = progress.answered if progress is not None else None

    def group_answers(indices: list[int]) -> list[Answer]:
        # Rendered group by group: only the prompts being answered are held, not the whole dataset's.
        texts = [render_prompt(loaded.tokenizer, *cases[i]) for i in indices]
        if sampling is not None:
            return sampled_answers(loaded, [cases[i] for i in indices], texts, settings, sampling,
                                   confidence=confidence, on_chunk=on_chunk)
        if not confidence:
            return [Answer(output.text, cut_at=output.cut_at) for output in generate(loaded, texts, settings, on_chunk)]
        row_names = [cases[i][0].tool_names for i in indices]
        names = list(dict.fromkeys(name for row in row_names for name in row))
        calls = tool_call_tokens(loaded.tokenizer, texts, names) if can_score_continuations(loaded) else None
        if calls is None or len(names) < 2:
            outputs = generate(loaded, texts, settings, on_chunk)
            choices = tool_choices(loaded, texts, row_names, settings.batch_size)
        else:
            # The tools' calls are scored from the same pass over each prompt that generation makes.
            column = {name: k for k, name in enumerate(names)}
            # Rows of a pool with tool sets of their own are fed only their own tools' calls.
            allowed = None if all(set(row) == set(names) for row in row_names) else [
                frozenset(column[n] for n in row) for row in row_names]
            outputs, scores = generate_scored(loaded, texts, settings, calls, allowed, on_chunk)
            choices = [choice_from_scores(row, [scored[column[n]] for n in row]) for row, scored in zip(row_names, scores)]
        return [Answer(output.text, choice, output.cut_at) for output, choice in zip(outputs, choices)]

    results: list[Answer | None] = [None] * len(cases)
    for indices in answer_batches(cases):
        for index, result in zip(indices, group_answers(indices)):
            results[index] = result
    return results


def cached_answers(
    load: Callable[[], LoadedModel],
    cases: Sequence[tuple[Suite, Case]],
    settings: GenerationSettings,
    *,
    confidence: bool,
    cache: AnswerCache | None = None,
    progress: ProgressSink | None = None,
    sampling: Sampling | None = None,
) -> tuple[list[Answer], list[int]]:
    """Every case's answer, from the cache where it has one; the model is loaded (`load()`) only when
    some case is not cached. Returns the answers and the indices of those generated now. `progress`
    is shown how many of those are answered, chunk by chunk. `sampling`: see `answer` (the cache must
    be one kept for these sampling settings)."""
    answers: list[Answer | None] = [cache.get(suite, case) if cache else None for suite, case in cases]
    missing = [index for index, found in enumerate(answers) if found is None]
    if missing:
        loaded = load()
        # One case (a Python test's question) is answered in the time a line takes to read.
        counter = Progress(len(missing), progress) if progress is not None and len(missing) > 1 else None
        fresh = answer(loaded, [cases[i] for i in missing], settings, confidence=confidence, progress=counter,
                       sampling=sampling)
        for index, new in zip(missing, fresh):
            answers[index] = new
            if cache:
                cache.put(*cases[index], new)
        if cache:
            cache.save()
    return answers, missing
