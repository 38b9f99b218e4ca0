"""The model's output layer applied to hidden states, as its own forward applies it.

Training, confidence scoring and evaluation project only the positions they need, so they call the
output layer themselves instead of taking the forward's logits.
"""

from __future__ import annotations


def output_logits(model, hidden, token_ids=None):
    """The model's logits (over `token_ids` only, when given), soft-capped as its forward caps them."""
    import torch

    head = model.get_output_embeddings()
    weight = head.weight if token_ids is None else head.weight[token_ids]
    bias = head.bias if head.bias is None or token_ids is None else head.bias[token_ids]
    logits = torch.nn.functional.linear(hidden, weight, bias)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def target_log_probs(model, hidden, targets, chunk: int | None = None):
    """log p(target) at each position of `hidden` ([positions, width]), in float32.

    `chunk` positions at a time when given (bigger chunks read the 262k-row output layer fewer
    times; smaller ones hold fewer logits at once); all at once otherwise.
    """
    import torch

    step = chunk or max(hidden.size(0), 1)
    pieces = []
    for begin in range(0, hidden.size(0), step):
        logits = output_logits(model, hidden[begin : begin + step]).float()
        pieces.append(torch.log_softmax(logits, dim=-1).gather(-1, targets[begin : begin + step, None])[:, 0])
    return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
