"""Attention masks from real token positions: a shared prefix stays exact under sliding windows.

Batched generation pads each user turn on the left, between the policy's shared prefix and the
turn. Transformers builds a sliding layer's mask from cache slots, padding included, so a window of
512 slots then reaches fewer than 512 real tokens back, and its sliding cache keeps only the last
slots. Prompts longer than the window (seven tool declarations are ~600 tokens) used to give up the
shared prefix for that reason. Here the cache keeps every slot (`full_cache`) and each layer type
gets a mask built from the real positions of keys and queries (`layer_masks`): a query sees a key
that is a real token, not after it and, in a sliding layer, less than a window behind it; exactly
the pattern the prompt has with no padding at all.
"""

from __future__ import annotations

# Attention implementations and the mask each takes: True where a key is seen, or 0 there and the
# dtype's minimum elsewhere. Others (flash, flex) build their own masks from a 2D one.
BOOLEAN, ADDITIVE = "boolean", "additive"
MASK_KINDS = {"sdpa": BOOLEAN, "eager": ADDITIVE}


def supports(model) -> bool:
    """Whether this model's layers take the per-layer-type masks `layer_masks` builds."""
    config = model.config.get_text_config()
    layer_types = getattr(config, "layer_types", None)
    return (
        config._attn_implementation in MASK_KINDS
        and bool(layer_types)
        and set(layer_types) <= {"full_attention", "sliding_attention"}
    )


def full_cache():
    """A KV cache whose every layer keeps all its tokens (no config: no sliding layers)."""
    from transformers import DynamicCache

    return DynamicCache()


def layer_masks(model, key_mask, query_positions) -> dict:
    """{layer type: [rows, 1, queries, keys] mask} for a forward over a `full_cache`.

    `key_mask` ([rows, keys], 0 on padding) covers the cache after this forward's tokens are added;
    a key's real position is the number of real keys before it. `query_positions` ([rows, queries])
    are the real positions of this forward's tokens (a padding token's is that of the real token
    before it, so it still sees something and its row stays finite).
    """
    import torch

    config = model.config.get_text_config()
    key_positions = key_mask.cumsum(dim=1) - 1
    behind = query_positions.unsqueeze(2) - key_positions.unsqueeze(1)  # [rows, queries, keys]
    seen = key_mask.bool().unsqueeze(1) & (behind >= 0)
    masks = {"full_attention": seen, "sliding_attention": seen & (behind < config.sliding_window)}
    dtype = model.dtype
    for kind, mask in masks.items():
        mask = mask.unsqueeze(1)
        if MASK_KINDS[config._attn_implementation] == ADDITIVE:
            mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
        masks[kind] = mask
    return masks
