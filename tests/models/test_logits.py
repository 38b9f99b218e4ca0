"""Log-probabilities from the output layer: without gradients the vocabulary is read a block at a time
with a running log-sum-exp; that must give the plain log-softmax over the whole vocabulary."""

from __future__ import annotations

import pytest
import tiny
import torch

from pytest_toolsel.models import logits


def test_blockwise_log_probs_equal_the_full_log_softmax(tiny_tokenizer, monkeypatch):
    model = tiny.build_model(tiny_tokenizer).eval()
    vocabulary = model.get_output_embeddings().weight.size(0)
    monkeypatch.setattr(logits, "VOCABULARY_BLOCK", 128)  # several blocks and a short last one
    assert vocabulary % 128
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(40, model.config.hidden_size, generator=generator) * 300
    full = torch.log_softmax(logits.output_logits(model, hidden).detach().float(), dim=-1)
    targets = torch.cat([torch.tensor([0, 127, 128, vocabulary - 1]), torch.randint(vocabulary, (26,), generator=generator),
                         full[30:].argmax(dim=-1)])
    plain = full[torch.arange(40), targets]
    with torch.inference_mode():
        blockwise = logits.target_log_probs(model, hidden, targets)
    assert torch.allclose(blockwise, plain, atol=1e-5, rtol=0)
    assert (plain < -1).any() and (plain > -0.5).any()  # confident and unlikely targets both covered


def test_with_gradients_the_log_probs_and_their_gradient_equal_log_softmax_and_gather(monkeypatch):
    """Training's path: one autograd node with the log-softmax's gradient computed in place, blocks
    of positions at a time; equal to the composed ops in float64, and a second backward through it
    is refused rather than reading the logits it overwrote."""
    monkeypatch.setattr(logits, "POSITION_BLOCK", 3)  # several blocks and a short last one
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(10, 50, generator=generator, dtype=torch.float64) * 4
    targets = torch.randint(50, (10,), generator=generator)
    weights = torch.randn(10, generator=generator, dtype=torch.float64)

    plain_input = values.clone().requires_grad_()
    plain = torch.log_softmax(plain_input, dim=-1).gather(-1, targets.unsqueeze(-1))[:, 0]
    (plain * weights).sum().backward()
    fused_input = values.clone().requires_grad_()
    fused = logits._picked_log_softmax(fused_input * 1.0, targets)
    (fused * weights).sum().backward(retain_graph=True)

    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused_input.grad, plain_input.grad, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (fused * weights).sum().backward()
