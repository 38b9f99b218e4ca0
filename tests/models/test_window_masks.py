"""Masks by real position: padding between a shared prefix and a user turn changes nothing a token sees."""

from __future__ import annotations

import tiny
import torch
from conftest import CORPUS

from pytest_toolsel.models.window_masks import layer_masks, supports


def _model(window: int, implementation: str = "sdpa"):
    model = tiny.build_model(tiny.build_tokenizer(CORPUS), sliding_window=window)
    model.config._attn_implementation = implementation
    return model


def test_without_padding_the_masks_are_causal_and_the_sliding_one_reaches_a_window_back():
    model = _model(window=4)
    masks = layer_masks(model, torch.ones(1, 10, dtype=torch.long), torch.arange(10).unsqueeze(0))
    query, key = torch.arange(10).unsqueeze(1), torch.arange(10).unsqueeze(0)
    assert torch.equal(masks["full_attention"][0, 0], key <= query)
    assert torch.equal(masks["sliding_attention"][0, 0], (key <= query) & (query - key < 4))


def test_padding_slots_are_never_seen_and_the_window_counts_real_tokens_only():
    model = _model(window=3)
    # prefix of 3 real tokens, 2 padding slots, then 3 real tokens (real positions 3, 4, 5)
    key_mask = torch.tensor([[1, 1, 1, 0, 0, 1, 1, 1]])
    masks = layer_masks(model, key_mask, torch.tensor([[2, 2, 3, 4, 5]]))
    sliding, full = masks["sliding_attention"][0, 0], masks["full_attention"][0, 0]
    assert not sliding[:, 3:5].any() and not full[:, 3:5].any()
    # the token at real position 5 (slot 7) sees positions 3, 4, 5 in the sliding layer: slots 5, 6, 7
    assert sliding[4].tolist() == [False, False, False, False, False, True, True, True]
    # position 3 (slot 5) sees positions 1, 2 (slots 1, 2) and itself, across the padding
    assert sliding[2].tolist() == [False, True, True, False, False, True, False, False]
    assert full[4].tolist() == [True, True, True, False, False, True, True, True]
    assert sliding[0].any() and sliding[1].any()  # a padding query still sees real tokens: no NaN row


def test_eager_attention_gets_an_additive_mask_and_other_implementations_are_not_supported():
    model = _model(window=4, implementation="eager")
    mask = layer_masks(model, torch.ones(1, 3, dtype=torch.long), torch.arange(3).unsqueeze(0))["full_attention"]
    assert mask.dtype == model.dtype and mask[0, 0, 0, 1] == torch.finfo(model.dtype).min and mask[0, 0, 1, 0] == 0
    assert supports(model) and supports(_model(window=4))
    assert not supports(_model(window=4, implementation="flash_attention_2"))
