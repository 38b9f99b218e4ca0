"""Which rows of the embedding matrix a fine-tune may change.

Gemma 3 ties its input embeddings to its output layer, and that matrix (262k rows) is most of the
270M parameters. Training all of it also moves the output rows of every string in the training
answers, which a few hundred examples can overfit. With `train_embeddings: control`, only the rows
of the control tokens that base preparation placed (they start as mere averages and must be
learned) change; every other row stays the base's, and the layers above learn to use them as they
are. What it measured on the shipped policies is in the README (Results).
"""

from __future__ import annotations

from typing import Iterable

CHOICES = ("all", "control")


def train_only_rows(model, rows: Iterable[int]) -> None:
    """Zero the gradient of every embedding row (input and, when untied, output) but `rows`, so
    that the optimiser leaves them exactly as they are (with no weight decay, AdamW's step on a
    row whose gradient is always zero is zero)."""
    import torch

    keep = sorted(set(rows))
    matrices = {id(layer.weight): layer.weight for layer in (model.get_input_embeddings(), model.get_output_embeddings())
                if layer is not None}
    for weight in matrices.values():
        mask = torch.zeros(weight.shape[0], 1)
        mask[keep] = 1
        # The trainer moves the model (to CUDA, say) after this, so the mask follows each gradient.
        weight.register_hook(lambda grad, mask=mask: grad * mask.to(device=grad.device, dtype=grad.dtype))
