"""Log-probabilities from the output layer: without gradients the vocabulary is read a block at a time
with a running log-sum-exp; that must give the plain log-softmax over the whole vocabulary."""

from __future__ import annotations

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
