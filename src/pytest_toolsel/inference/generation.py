"""Batched greedy generation with the FunctionGemma stop sequences."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Callable, Sequence

from ..functiongemma.chat_format import STOP_STRINGS
from ..models.loading import LoadedModel
from ..models import window_masks
from ..models.prefix import attends_to_everything, cache_argument, prefix_cache, repeated_cache, shared_prefix_length
from . import decoding, scoring
from .budget import cut_at


# Sharing a prefix by position keeps every token in the cache, where a sliding layer would keep a
# window's worth: worth it for a policy's developer turn (hundreds of tokens), not for the few
# tokens that rows with tools of their own have in common.
MIN_SHARED_BY_POSITION = 64


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int = 128
    # Tokens per answer. None: follow the data (budget.py), which the caller resolves before generating.
    max_new_tokens: int | None = 64
    reuse_prefix: bool = True  # run the shared prompt prefix once per call (see `generate`)

    def as_dict(self) -> dict:
        return {"batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens, "do_sample": False}


def stop_token_ids(tokenizer) -> list[int]:
    """Ids that end an answer: the stop sequences where they are single tokens, plus EOS."""
    ids = []
    for text in STOP_STRINGS:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1:
            ids.append(encoded[0])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


def truncate_at_stop(text: str) -> str:
    """Cut after the first stop sequence (kept, so the raw output shows why generation ended)."""
    cut = len(text)
    for stop in STOP_STRINGS:
        at = text.find(stop)
        if at >= 0:
            cut = min(cut, at + len(stop))
    return text[:cut]


ChunkDone = Callable[[int], None]  # told how many prompts each chunk of the batched pass answered


@dataclass(frozen=True)
class Generated:
    """An answer's text (up to its stop sequence, which is kept) and, when the generation budget ended
    it before any stop, that budget in tokens."""

    text: str
    cut_at: int | None = None


def generate(
    loaded: LoadedModel, prompts: Sequence[str], settings: GenerationSettings, on_chunk: ChunkDone | None = None,
    sampled=None,
) -> list[Generated]:
    """Greedy answers to fully rendered prompts, in the prompts' order.

    The prompts of one policy share a long prefix (the developer turn that declares every tool) and
    differ in a short user turn. The prefix is run through the model once; each batch starts from
    a copy of its KV cache and computes only the user turns, padded between prefix and user turn.
    Batches go longest first, so that little is padding. Where a sliding window is shorter than the
    sequences, the cache keeps every token and attention follows real positions instead of cache
    slots (`models.window_masks`); a model whose masks cannot be given so does not share the prefix
    and its prompts are plainly left-padded. `on_chunk(n)` is called after each batch with its number of prompts.
    `sampled` (sampling.SeededRows), when given, samples each prompt's answer from its own seed instead.
    """
    return [answer for answer, _ in _run(loaded, prompts, settings, None, None, on_chunk, sampled)]


def can_score_continuations(loaded: LoadedModel) -> bool:
    return decoding.supports(loaded.model)


def generate_scored(
    loaded: LoadedModel, prompts: Sequence[str], settings: GenerationSettings, continuations: Sequence[list[int]],
    allowed: scoring.Allowed = None, on_chunk: ChunkDone | None = None,
) -> tuple[list[Generated], list[list[float]]]:
    """`generate`, plus for each prompt the scores of token `continuations` of it (see
    `scoring.continuation_scores`), computed from the same pass over the prompt; with `allowed`, per
    prompt only those of the continuations it lists (see `scoring.greedy_and_scores`)."""
    if not can_score_continuations(loaded):
        raise ValueError(f"{loaded.name}: continuation scores need the built-in decoding loop")
    results = _run(loaded, prompts, settings, continuations, allowed, on_chunk)
    return [answer for answer, _ in results], [scores for _, scores in results]


def _run(loaded, prompts, settings, continuations, allowed, on_chunk, sampled=None) -> list[tuple[Generated, list[float] | None]]:
    tokenizer = loaded.tokenizer
    # Every prompt's tokens are needed before the first batch (for the shared prefix and the order),
    # and held in 4 bytes a token, not in a list of Python ints at 36: a policy of thousands of cases
    # would otherwise hold its tokenized prompts at several times the size of a batch's work.
    encoded = [array("i", tokenizer.encode(prompt, add_special_tokens=False)) for prompt in prompts]
    prefix = _shared_prefix(loaded, encoded, settings)
    shared = len(prefix.tokens)
    stops = stop_token_ids(tokenizer)
    config = _generation_config(tokenizer, settings, stops)
    suffixes = [ids[shared:] for ids in encoded]
    del encoded
    order = sorted(range(len(prompts)), key=lambda i: -len(suffixes[i]))
    results: list = [None] * len(prompts)
    for begin in range(0, len(order), settings.batch_size):
        batch = order[begin : begin + settings.batch_size]
        work = (continuations, [allowed[i] for i in batch] if allowed is not None else None,
                sampled.rows(batch) if sampled is not None else None)
        done = _generate_halving_on_oom(loaded, prefix, [suffixes[i].tolist() for i in batch], config, work)
        for (tokens, scores), index in zip(done, batch):
            text = decode_answer(tokenizer, tokens, stops)
            cut = cut_at(tokens, text, settings.max_new_tokens, stops, STOP_STRINGS)
            results[index] = (Generated(text, cut), scores)
            suffixes[index] = None  # answered: its tokens are not needed again
        if on_chunk is not None:
            on_chunk(len(batch))
    return results


@dataclass(frozen=True)
class SharedPrefix:
    """The prompts' common first tokens and their one-row KV cache (none: nothing is shared)."""

    tokens: list[int]
    cache: object
    by_position: bool = False  # see `decoding.start`


def _shared_prefix(loaded, encoded, settings: GenerationSettings) -> SharedPrefix:
    """The tokens every prompt starts with, run through the model once. Where a sliding window is
    shorter than the prompts they are shared by position, if the model allows it and they are
    worth it (`MIN_SHARED_BY_POSITION`); otherwise nothing is shared."""
    shared = shared_prefix_length(encoded) if settings.reuse_prefix else 0
    model = loaded.model
    by_position = bool(shared) and not attends_to_everything(model, max(map(len, encoded)) + settings.max_new_tokens)
    unshareable = by_position and (
        shared < MIN_SHARED_BY_POSITION or not decoding.supports(model) or not window_masks.supports(model)
    )
    if not shared or unshareable:
        return SharedPrefix([], None)
    import torch

    tokens = encoded[0][:shared].tolist()
    with torch.inference_mode():
        cache = prefix_cache(model.base_model, torch.tensor([tokens], device=loaded.device), by_position)
    return SharedPrefix(tokens, cache, by_position)


def _generation_config(tokenizer, settings: GenerationSettings, stops: list[int]):
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=False,
        max_new_tokens=settings.max_new_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        # Stop sequences that this tokenizer splits into several pieces are matched as strings.
        stop_strings=[s for s in STOP_STRINGS if len(tokenizer.encode(s, add_special_tokens=False)) > 1] or None,
    )


def _generate_halving_on_oom(loaded, prefix: SharedPrefix, suffixes, config, scored):
    """(new tokens, continuation scores) per suffix; a CUDA out-of-memory error splits the batch in two
    and retries. `scored`: (continuations, per-suffix allowed ones or None, per-suffix seeds or None)."""
    import torch

    try:
        return _generate_batch(loaded, prefix, suffixes, config, scored)
    except torch.cuda.OutOfMemoryError:
        if len(suffixes) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(suffixes) // 2
        continuations, allowed, sampled = scored
        halves = [slice(None, half), slice(half, None)]
        return [
            result for part in halves for result in _generate_halving_on_oom(
                loaded, prefix, suffixes[part], config,
                (continuations, allowed[part] if allowed is not None else None,
                 sampled.rows(part) if sampled is not None else None))
        ]


def _generate_batch(loaded, prefix: SharedPrefix, suffixes, config, scored):
    import torch

    continuations, allowed, sampled = scored
    if not decoding.supports(loaded.model):
        return [(tokens, None) for tokens in _generate_with_transformers(loaded, prefix, suffixes, config)]
    stop = decoding.StopRule(frozenset(config.eos_token_id), tuple(config.stop_strings or ()))
    model, tokenizer = loaded.model, loaded.tokenizer
    with torch.inference_mode():
        rows = decoding.start(model, tokenizer, prefix.tokens, prefix.cache, suffixes, prefix.by_position)
        if not continuations:
            choose = sampled.chooser(model) if sampled is not None else None
            return [(tokens, None) for tokens in decoding.greedy(model, tokenizer, rows, config.max_new_tokens, stop,
                                                                 choose=choose)]
        return list(zip(*scoring.greedy_and_scores(model, tokenizer, rows, config.max_new_tokens, stop, continuations, allowed)))


def _generate_with_transformers(loaded, shared: SharedPrefix, suffixes, config) -> list[list[int]]:
    """`model.generate` on the batch: for models whose greedy decoding `decoding.greedy` cannot mirror
    (never with a prefix shared by position: `_run` shares none then)."""
    import torch

    prefix, shared_cache = shared.tokens, shared.cache
    width = max(len(suffix) for suffix in suffixes)
    pad = loaded.tokenizer.pad_token_id
    ids = [prefix + [pad] * (width - len(suffix)) + suffix for suffix in suffixes]
    mask = [[1] * len(prefix) + [0] * (width - len(suffix)) + [1] * len(suffix) for suffix in suffixes]
    inputs = {
        "input_ids": torch.tensor(ids, device=loaded.device),
        "attention_mask": torch.tensor(mask, device=loaded.device),
    }
    if shared_cache is not None:
        inputs[cache_argument(loaded.model)] = repeated_cache(shared_cache, len(suffixes))
    with torch.inference_mode():
        output = loaded.model.generate(**inputs, generation_config=config, tokenizer=loaded.tokenizer)
    return output[:, len(ids[0]) :].tolist()


def decode_answer(tokenizer, token_ids: list[int], stops: list[int]) -> str:
    for position, token in enumerate(token_ids):
        if token in stops:
            token_ids = token_ids[: position + 1]
            break
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    if tokenizer.eos_token:
        text = text.removesuffix(tokenizer.eos_token)
    return truncate_at_stop(text)
