"""The training loss runs each shared prompt prefix once and projects only answer positions; its loss
and gradients must equal those of a plain full forward pass."""

from __future__ import annotations

import functools

import pytest
import tiny
import torch
from conftest import LESSONS, STOCKS, TOOLS, WEATHER

from pytest_toolsel.models.logits import IGNORED, answer_log_probs
from pytest_toolsel.models.prefix import prefix_cache
from pytest_toolsel.training.loss import (
    answer_head_weights,
    prefix_groups,
    prompt_lengths,
    weighted_answer_loss,
)

OTHER_POLICY = "You are the weather desk's assistant. Only ever answer weather questions with a tool call."


def plain_loss(model, input_ids, mask, labels, head_tokens, head_weight):
    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    weights = answer_head_weights(targets, head_tokens, head_weight)
    return -(log_probs * weights).sum() / weights.sum()


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.fixture
def two_policies(tiny_tokenizer):
    """Rows of two policies (different developer turns), interleaved, plus one of a third."""
    first = tiny.lesson_texts(LESSONS, TOOLS)
    second = tiny.lesson_texts(LESSONS[:3], [WEATHER], system=OTHER_POLICY)
    lone = tiny.lesson_texts(LESSONS[2:3], [STOCKS], system="Be brief.")
    pairs = [first[0], second[0], first[1], first[4], second[1], lone[0], second[2], first[5]]
    return tiny.answer_batch(tiny_tokenizer, pairs)


def test_rows_of_one_policy_share_their_prefix_and_no_prefix_reaches_an_answer(two_policies):
    input_ids, _, labels = two_policies
    groups = prefix_groups(input_ids, labels)
    assert [group.rows for group in groups] == [[0, 2, 3, 7], [1, 4, 6], [5]]
    lengths = prompt_lengths(labels)
    for group in groups:
        assert all(group.prefix_length < lengths[row] for row in group.rows)
        prefix = input_ids[group.rows[0], : group.prefix_length]
        assert all(torch.equal(input_ids[row, : group.prefix_length], prefix) for row in group.rows)
    assert groups[0].prefix_length > 20 and groups[2].prefix_length == 0


@pytest.mark.parametrize("window", [1024, 16], ids=["prefix-shared", "prefix-longer-than-the-sliding-window"])
@pytest.mark.parametrize("head_weight", [1.0, 5.0])
def test_loss_and_gradients_equal_the_plain_forward(tiny_tokenizer, two_policies, window, head_weight):
    torch.manual_seed(0)
    model = tiny.build_model(tiny_tokenizer, seed=3, sliding_window=window)
    model.train()
    input_ids, mask, labels = two_policies

    expected = plain_loss(model, input_ids, mask, labels, 4, head_weight)
    expected_grads = gradients(model, expected)
    actual = weighted_answer_loss(model, input_ids, mask, labels, 4, head_weight)
    actual_grads = gradients(model, actual)

    assert actual.item() == pytest.approx(expected.item(), rel=1e-5)
    assert actual_grads.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        torch.testing.assert_close(actual_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("window", [1024, 16], ids=["prefix-shared", "prefix-longer-than-the-sliding-window"])
def test_prefix_without_gradient_keeps_the_loss_and_leaves_out_only_the_prefix_path(tiny_tokenizer, window):
    """`prefix_gradient: false`: the same loss; the gradients are those of a model whose prefix cache
    came from a copy of it (a constant to this model's parameters), and differ from the full ones."""
    import copy

    rows = tiny.lesson_texts(LESSONS, TOOLS)
    input_ids, mask, labels = tiny.answer_batch(tiny_tokenizer, rows[:4])
    (group,) = prefix_groups(input_ids, labels)
    assert group.prefix_length > window or window > input_ids.size(1)
    model = tiny.build_model(tiny_tokenizer, seed=3, sliding_window=window)
    model.train()

    full = weighted_answer_loss(model, input_ids, mask, labels, 4, 5.0)
    full_grads = gradients(model, full)
    constant = weighted_answer_loss(model, input_ids, mask, labels, 4, 5.0, prefix_gradient=False)
    constant_grads = gradients(model, constant)

    cache = prefix_cache(copy.deepcopy(model).base_model, input_ids[:1, : group.prefix_length])
    log_probs, targets = answer_log_probs(model, input_ids, mask, labels, group.prefix_length, cache=cache)
    weights = answer_head_weights(targets, 4, 5.0)
    expected = -(log_probs * weights[targets != IGNORED]).sum() / weights.sum()
    expected_grads = gradients(model, expected)

    assert constant.item() == pytest.approx(full.item(), rel=1e-6)
    assert constant_grads.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        torch.testing.assert_close(constant_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    changed = [name for name, grad in full_grads.items() if not torch.allclose(grad, constant_grads[name], atol=1e-6)]
    assert any("k_proj" in name for name in changed)  # the prefix's keys no longer feed back


def width_recording(forward, widths: list):
    """`forward`, noting the width of each batch it runs; it keeps the signature, from which the loss
    reads the name of the cache keyword."""

    @functools.wraps(forward)
    def recording(**kwargs):
        widths.append(kwargs["input_ids"].size(1))
        return forward(**kwargs)

    return recording


def test_a_prefix_longer_than_the_sliding_window_is_still_shared(tiny_tokenizer, two_policies, monkeypatch):
    """Right-padded rows put no padding between prefix and text: the loss above must have run the
    prefixes once (the window-16 case equals the plain forward with them shared, not by falling back)."""
    import pytest_toolsel.training.loss as training_loss

    input_ids, mask, labels = two_policies
    model = tiny.build_model(tiny_tokenizer, seed=3, sliding_window=16)
    assert max(group.prefix_length for group in prefix_groups(input_ids, labels)) > 16
    widths = []
    monkeypatch.setattr(model.base_model, "forward", width_recording(model.base_model.forward, widths))
    weighted_answer_loss(model, input_ids, mask, labels, 4, 5.0)
    shared = [group.prefix_length for group in prefix_groups(input_ids, labels) if len(group.rows) > 1]
    assert shared and all(length in widths for length in shared)  # each prefix ran once, on its own
    lone = [group.rows[0] for group in prefix_groups(input_ids, labels) if len(group.rows) == 1]
    assert [widths.count(int(mask[row].sum())) for row in lone] == [1]  # the row of its own, at its own length


def test_left_padded_rows_do_not_share_a_prefix_across_a_short_window(tiny_tokenizer, two_policies, monkeypatch):
    input_ids, mask, labels = two_policies
    flipped = (input_ids.flip(1), mask.flip(1), labels.flip(1))
    model = tiny.build_model(tiny_tokenizer, seed=3, sliding_window=16)
    widths = []
    monkeypatch.setattr(model.base_model, "forward", width_recording(model.base_model.forward, widths))
    weighted_answer_loss(model, *flipped, 4, 5.0)
    assert widths == [input_ids.size(1)]  # one plain forward of the whole batch


def test_a_token_count_keeps_the_gradient_of_prefixes_up_to_that_length_only(tiny_tokenizer):
    """`prefix_gradient: N`: a prefix of at most N tokens trains as with `true`, a longer one as with `false`."""
    rows = tiny.lesson_texts(LESSONS, TOOLS)
    input_ids, mask, labels = tiny.answer_batch(tiny_tokenizer, rows[:4])
    (group,) = prefix_groups(input_ids, labels)
    model = tiny.build_model(tiny_tokenizer, seed=3)
    model.train()

    def grads(setting):
        return gradients(model, weighted_answer_loss(model, input_ids, mask, labels, 4, 5.0, prefix_gradient=setting))

    full, constant = grads(True), grads(False)
    for setting, expected in ((group.prefix_length, full), (group.prefix_length - 1, constant)):
        actual = grads(setting)
        for name, grad in expected.items():
            torch.testing.assert_close(actual[name], grad, rtol=1e-5, atol=1e-7, msg=f"{setting}: {name}")
    assert any(not torch.allclose(full[name], constant[name], atol=1e-6) for name in full)
