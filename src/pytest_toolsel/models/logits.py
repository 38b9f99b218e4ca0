"""The model's output layer applied to hidden states, as its own forward applies it.

Training, confidence scoring and evaluation project only the positions they need, so they call the
output layer themselves instead of taking the forward's logits. The log-probabilities of answer
tokens after a shared prefix (`answer_log_probs`) are the training loss's and the tool-choice
confidence's alike.
"""

from __future__ import annotations

from .prefix import hidden_after_prefix, prefix_cache

IGNORED = -100  # the label of a position that carries no loss and no score


def output_logits(model, hidden, token_ids=None):
    """The model's logits (over `token_ids`, ids or a slice, only when given), soft-capped as its forward caps them."""
    import torch

    head = model.get_output_embeddings()
    if token_ids is None:
        logits = head(hidden)  # through the module, so that its hooks (training's ControlRows) apply
    else:
        bias = None if head.bias is None else head.bias[token_ids]
        logits = torch.nn.functional.linear(hidden, head.weight[token_ids], bias)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def target_log_probs(model, hidden, targets):
    """log p(target) at each position of `hidden` ([positions, width]), in float32.

    With gradients (training) from the whole logits, which autograd keeps anyway; without them
    blockwise over the vocabulary (`_log_probs_by_vocabulary_block`).
    """
    import torch

    if not torch.is_grad_enabled():
        return _log_probs_by_vocabulary_block(model, hidden, targets)
    return _picked_log_softmax(output_logits(model, hidden).float(), targets)


POSITION_BLOCK = 32  # logits rows per pass of the log-softmax: 32 x 262k floats stay in the cache


def _picked_log_softmax(logits, targets):
    """`log_softmax(logits).gather(targets)` in one autograd node that writes no other
    [positions, vocabulary] tensor: a few hundred answer positions' logits are ~400 MB, and the
    composed version allocates, fills and reads three more of those per step (log-softmax's output,
    the gather's dense gradient, the log-softmax gradient), which took as long on a 2-core CPU as
    the output layer's products themselves."""
    import torch

    class PickedLogSoftmax(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, targets):
            norms = torch.cat([torch.logsumexp(block, dim=-1) for block in logits.split(POSITION_BLOCK)])
            ctx.save_for_backward(logits, targets, norms)
            return logits.gather(-1, targets.unsqueeze(-1))[:, 0] - norms

        @staticmethod
        def backward(ctx, grad):
            logits, targets, norms = ctx.saved_tensors
            # d/dlogits of (logit[target] - logsumexp) = onehot(target) - softmax, computed in place
            # in the saved logits: nothing reads them after this node (a second backward through
            # this graph would fail autograd's version check instead of reading them changed).
            for begin in range(0, logits.size(0), POSITION_BLOCK):
                rows = slice(begin, begin + POSITION_BLOCK)
                logits[rows].sub_(norms[rows, None]).exp_().mul_(-grad[rows, None])
            logits.scatter_add_(-1, targets.unsqueeze(-1), grad.unsqueeze(-1).to(logits.dtype))
            return logits, None

    return PickedLogSoftmax.apply(logits, targets)


VOCABULARY_BLOCK = 16384  # output-layer rows per product when no gradient is needed


def _log_probs_by_vocabulary_block(model, hidden, targets):
    """`target_log_probs` for all positions at once, the vocabulary a block at a time with a running
    log-sum-exp: each block's logits are used while they are still in cache instead of all 262k
    being written out and read back (~40% faster on a CPU for a few hundred positions)."""
    import torch

    positions = torch.arange(hidden.size(0), device=hidden.device)
    peak = torch.full((hidden.size(0),), float("-inf"), device=hidden.device)
    total = torch.zeros(hidden.size(0), device=hidden.device)
    target_logits = torch.zeros(hidden.size(0), device=hidden.device)
    vocabulary = model.get_output_embeddings().weight.size(0)
    for begin in range(0, vocabulary, VOCABULARY_BLOCK):
        end = min(begin + VOCABULARY_BLOCK, vocabulary)
        logits = output_logits(model, hidden, slice(begin, end)).float()
        new_peak = torch.maximum(peak, logits.amax(dim=-1))
        total = total * torch.exp(peak - new_peak) + torch.exp(logits - new_peak.unsqueeze(1)).sum(dim=-1)
        peak = new_peak
        inside = (targets >= begin) & (targets < end)
        target_logits = torch.where(inside, logits[positions, (targets - begin).clamp(0, end - begin - 1)], target_logits)
    return target_logits - peak - torch.log(total)


def answer_log_probs(
    model, input_ids, attention_mask, labels, prefix_length: int, cache=None, prefix_gradient: bool = True
):
    """Log-probabilities of the answer tokens, and the shifted labels they belong to.

    Returns (log_probs, targets): `targets` are the next-token labels of the positions the model
    computed (from `prefix_length` on); `log_probs` holds one entry per target that is not ignored.
    `cache`, when given, is the prefix's KV cache already computed (it is consumed).
    `prefix_gradient` False computes the prefix's cache without gradient: the values are the same,
    but gradients stop at the prefix's keys and values (a constant context, as Transformer-XL treats
    its memory), which saves the prefix's backward and its stored activations.
    """
    import torch

    backbone = model.base_model
    if prefix_length:
        if cache is None:
            with torch.set_grad_enabled(prefix_gradient and torch.is_grad_enabled()):
                cache = prefix_cache(backbone, input_ids[:1, :prefix_length])
        hidden = hidden_after_prefix(backbone, cache, input_ids, attention_mask, prefix_length)
    else:
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    targets = labels[:, prefix_length + 1 :]
    return token_log_probs(model, hidden[:, :-1], targets), targets


def token_log_probs(model, hidden, targets):
    """log p(target) at each position whose target is not ignored, projecting only those positions."""
    selected = targets != IGNORED
    return target_log_probs(model, hidden[selected], targets[selected])
