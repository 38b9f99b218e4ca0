"""The shared prompt prefix: every prompt of a policy starts with the same developer turn.

Generation and training both run that prefix through the model once and reuse its KV cache.
"""

from __future__ import annotations

from typing import Sequence


def common_prefix_length(sequences: Sequence[Sequence[int]], limit: int | None = None) -> int:
    """Tokens that every sequence starts with (at most `limit`)."""
    shortest = min(len(sequence) for sequence in sequences)
    limit = shortest if limit is None else min(limit, shortest)
    length = 0
    while length < limit and all(sequence[length] == sequences[0][length] for sequence in sequences):
        length += 1
    return length


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Tokens that every sequence starts with, leaving at least one token of each to feed the model."""
    if len(sequences) < 2:
        return 0
    return common_prefix_length(sequences, min(len(sequence) for sequence in sequences) - 1)


def attends_to_everything(model, length: int) -> bool:
    """Whether every layer sees all of a `length`-token sequence (no sliding window cuts it short).

    Padding between prefix and user turn is exact only then: a sliding window counts cache slots,
    padding included, so it would reach fewer real tokens back than it does without padding.
    """
    config = model.config.get_text_config()
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if window is None or (layer_types is not None and not any("sliding" in kind for kind in layer_types)):
        return True
    return length <= window


def cache_argument(model) -> str:
    """The forward's KV-cache keyword: transformers renamed `past_key_values` to `cache` during 5.x."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(output):
    """The KV cache a forward returned (renamed like its keyword, see `cache_argument`)."""
    return getattr(output, "cache", None) or output.past_key_values


def prefix_cache(backbone, prefix_ids, by_position: bool = False):
    """The KV cache of one row of prefix tokens (shape [1, P]); no output projection is computed.

    `by_position`: every layer keeps every token and attends by real positions (`window_masks`), so
    that rows continuing the prefix after padding stay exact under a sliding window shorter than them.
    """
    if not by_position:
        return returned_cache(backbone(input_ids=prefix_ids, use_cache=True))
    import torch

    from .window_masks import full_cache, layer_masks

    positions = torch.arange(prefix_ids.size(1), device=prefix_ids.device).unsqueeze(0)
    output = backbone(
        input_ids=prefix_ids,
        attention_mask=layer_masks(backbone, torch.ones_like(prefix_ids), positions),
        position_ids=positions,
        use_cache=True,
        **{cache_argument(backbone): full_cache()},
    )
    return returned_cache(output)


def repeated_cache(cache, rows: int):
    """A copy of a one-row prefix cache, repeated for `rows` rows; `cache` stays as it is for other batches."""
    import copy

    repeated = copy.deepcopy(cache)
    repeated.batch_repeat_interleave(rows)
    return repeated


def hidden_after_prefix(backbone, cache, input_ids, attention_mask, prefix_length: int):
    """Last hidden states of `input_ids[:, prefix_length:]`, continuing every row from `cache`.

    `cache` holds the prefix once and is repeated for the rows in place; `attention_mask` covers the
    whole rows, prefix included. Rows are right-padded, so no padding sits between prefix and text.
    """
    import torch

    cache.batch_repeat_interleave(input_ids.size(0))
    positions = torch.arange(prefix_length, input_ids.size(1), device=input_ids.device)
    return backbone(
        input_ids=input_ids[:, prefix_length:],
        attention_mask=attention_mask,
        position_ids=positions.expand(input_ids.size(0), -1),
        use_cache=True,
        **{cache_argument(backbone): cache},
    ).last_hidden_state
