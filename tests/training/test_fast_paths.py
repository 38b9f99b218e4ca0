"""Training's fast paths give the model the slower paths they replace gave, to float tolerance:
the frozen embedding matrix with its control rows trained on their own (instead of the whole matrix
trained with every other row's gradient masked), fused AdamW (instead of the per-parameter loop),
each prefix group padded to its own width, and the eval loss through the prefix-shared path."""

from __future__ import annotations

import pytest
import tiny
import torch
from conftest import LESSONS, STOCKS, TOOLS
from test_loss import width_recording

from pytest_toolsel.training.embeddings import ControlRows
from pytest_toolsel.training.loss import weighted_answer_loss

CONTROL = [3, 7, 11]  # any few rows play the control tokens' part


def masked_rows(model, rows):
    """The replaced path: the whole (tied) matrix trains, every other row's gradient zeroed."""
    weight = model.get_input_embeddings().weight
    mask = torch.zeros(weight.shape[0], 1)
    mask[rows] = 1
    weight.register_hook(lambda grad: grad * mask)


def mixed_batches(tokenizer):
    """Right-padded batches that mix a long policy's rows with a short one's (the remainder batch)."""
    long = tiny.lesson_texts(LESSONS, TOOLS, system="Answer with a tool call whenever one of the tools fits the request.")
    short = tiny.lesson_texts(LESSONS[:3], [STOCKS])
    return [tiny.answer_batch(tokenizer, long[:3] + short[:2]), tiny.answer_batch(tokenizer, short + long[3:5])]


def trained(tokenizer, fast: bool, steps: int = 6):
    model = tiny.build_model(tokenizer, seed=5, sliding_window=1024)
    model.train()
    if fast:
        rows = ControlRows(model, CONTROL)
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0, fused=True)
    else:
        masked_rows(model, CONTROL)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0, foreach=False)
    losses = []
    batches = mixed_batches(tokenizer)
    for step in range(steps):
        ids, mask, labels = batches[step % len(batches)]
        loss = weighted_answer_loss(model, ids, mask, labels, 4, 5.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 0.5)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        losses.append(loss.item())
    if fast:
        rows.merge()
    return losses, {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def test_frozen_matrix_with_control_rows_and_fused_adamw_train_the_model_the_masked_loop_trained(tiny_tokenizer):
    slow_losses, slow = trained(tiny_tokenizer, fast=False)
    fast_losses, fast = trained(tiny_tokenizer, fast=True)
    assert fast_losses == pytest.approx(slow_losses, rel=1e-5)
    assert fast.keys() == slow.keys()  # merged: no parameter of ours is left in the checkpoint
    # Adam divides each gradient by its running scale, so a rounding difference in a near-zero
    # gradient moves that one number by a fraction of the learning rate (1e-2): 1e-4 is 1% of a step.
    for name, tensor in slow.items():
        torch.testing.assert_close(fast[name], tensor, rtol=1e-4, atol=1e-4, msg=name)
    embeddings = "model.embed_tokens.weight"
    start = tiny.build_model(tiny_tokenizer, seed=5, sliding_window=1024).state_dict()[embeddings]
    changed = set(torch.nonzero((fast[embeddings] != start).any(dim=1)).flatten().tolist())
    assert changed and changed <= set(CONTROL)


def test_control_rows_reach_generation_through_the_matrix_and_the_hooks_alike(tiny_tokenizer):
    """During training every path sees the trained rows: the module forward (hooks), a slice of the
    matrix read directly (scoring), and after `merge` the plain model."""
    model = tiny.build_model(tiny_tokenizer, seed=5)
    rows = ControlRows(model, CONTROL)
    with torch.no_grad():
        rows.values.add_(1.0)  # as an optimiser step would
    ids = torch.tensor([[CONTROL[0], 20, CONTROL[2], 21]])
    hooked = model(input_ids=ids).logits
    assert torch.equal(model.get_input_embeddings().weight[CONTROL], rows.values.detach())
    rows.merge()
    assert not any(name.startswith(ControlRows.PARAMETER) for name, _ in model.named_parameters())
    torch.testing.assert_close(model(input_ids=ids).logits, hooked)


def test_each_prefix_group_padded_to_its_own_width_gives_the_loss_and_gradients_of_the_whole_width(tiny_tokenizer,
                                                                                                  monkeypatch):
    import pytest_toolsel.training.loss as training_loss

    ids, mask, labels = mixed_batches(tiny_tokenizer)[0]
    model = tiny.build_model(tiny_tokenizer, seed=5, sliding_window=1024)

    def loss_and_grads():
        model.zero_grad()
        loss = weighted_answer_loss(model, ids, mask, labels, 4, 5.0)
        loss.backward()
        return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()}

    widths = []
    forward = model.base_model.forward
    monkeypatch.setattr(model.base_model, "forward", width_recording(forward, widths))
    trimmed_loss, trimmed = loss_and_grads()
    short_rows = int(mask[3:].sum(dim=1).max())
    assert short_rows < ids.size(1) and max(widths[2:]) <= short_rows  # the short group ran at its own width
    monkeypatch.setattr(model.base_model, "forward", forward)
    monkeypatch.setattr(training_loss, "right_padded", lambda attention_mask: False)  # whole width, no sharing
    whole_loss, whole = loss_and_grads()
    assert trimmed_loss == pytest.approx(whole_loss, rel=1e-5)
    for name, grad in whole.items():
        torch.testing.assert_close(trimmed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_eval_loss_through_the_prefix_path_is_the_plain_answer_likelihood(tiny_tokenizer):
    ids, mask, labels = mixed_batches(tiny_tokenizer)[1]
    model = tiny.build_model(tiny_tokenizer, seed=5, sliding_window=1024).eval()
    with torch.no_grad():
        ours = weighted_answer_loss(model, ids, mask, labels, 0, 1.0)
        plain = model(input_ids=ids, attention_mask=mask, labels=labels).loss  # mean NLL of the answer tokens
    assert ours.item() == pytest.approx(plain.item(), rel=1e-5)
