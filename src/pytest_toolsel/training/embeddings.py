"""Which rows of the embedding matrix a fine-tune may change.

Gemma 3 ties its input embeddings to its output layer, and that matrix (262k rows) is most of the
270M parameters. Training all of it also moves the output rows of every string in the training
answers, which a few hundred examples can overfit. With `train_embeddings: control`, only the rows
of the control tokens that base preparation placed (they start as mere averages and must be
learned) change; every other row stays the base's, and the layers above learn to use them as they
are.

The matrix itself is then frozen and the few trained rows live in a small parameter of their own
(`ControlRows`): a gradient for the whole matrix, masked down to a few rows, would cost a dense
262k x 640 product from the output layer, a dense scatter from the input side, and an optimiser
step and a clipping norm over 168M numbers, every step, for 7 rows that change.
"""

from __future__ import annotations

from typing import Iterable

CHOICES = ("all", "control")


class ControlRows:
    """Trainable values of a few rows of a frozen, possibly tied, embedding matrix.

    `values` (a `torch.nn.Parameter`, registered on the model so that the trainer's optimiser
    steps it) starts as the matrix's rows. Each forward first copies the current values into the
    frozen matrix (the input embeddings' hook, which runs before the output layer), so that the
    output layer and code reading the matrix directly (scoring a slice of the vocabulary,
    generation) see them. Forward hooks then give `values` its gradient: in the input embeddings
    they put it in place of those rows (scaled as the embedding layer scales its output); in the
    output layer's logits (before any soft-capping, which the model applies after its head) a node
    adds the gradient of those columns to it. `merge` copies one last time, after the final
    optimiser step, and removes the hooks: the model is then a plain model again.

    Loss and gradients equal those of training the whole matrix with every other row's gradient
    masked to zero (tested), and with weight decay 0 AdamW's updates of the rows are equal too.
    """

    PARAMETER = "toolsel_control_rows"

    def __init__(self, model, rows: Iterable[int]):
        import torch

        self.model = model
        embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
        self.matrices = {id(layer.weight): layer.weight for layer in (embeddings, head) if layer is not None}
        for weight in self.matrices.values():
            weight.requires_grad_(False)
        self.rows = torch.tensor(sorted(set(rows)), dtype=torch.long)
        self.hooks = []
        if not len(self.rows):
            return
        # Untied heads would need values of their own; every Gemma 3 ties them, and so do we here.
        if head is not None and head.weight is not embeddings.weight:
            raise ValueError("train_embeddings 'control' needs tied input and output embeddings")
        weight = embeddings.weight
        self.values = torch.nn.Parameter(weight.detach()[self.rows].clone())
        model.register_parameter(self.PARAMETER, self.values)
        slots = torch.full((weight.size(0),), -1, dtype=torch.long)
        slots[self.rows] = torch.arange(len(self.rows))
        self.slots = slots
        self.hooks.append(embeddings.register_forward_hook(self._embed))
        if head is not None:
            self.hooks.append(head.register_forward_hook(self._project))

    def _sync(self) -> None:
        # Through `.data`: a forward's later prefix groups write the same values again, and a write
        # to the matrix itself would invalidate what an earlier group's output layer saved for backward.
        for weight in self.matrices.values():
            weight.data[self.rows.to(weight.device)] = self.values.detach().to(weight.dtype)

    def _embed(self, module, inputs, output):
        import torch

        self._sync()
        ids = inputs[0]
        slot = self.slots.to(ids.device)[ids]
        mine = slot >= 0
        if not bool(mine.any()):
            return output
        scale = getattr(module, "embed_scale", None)
        rows = self.values[slot.clamp(min=0)]
        rows = rows * scale.to(rows.dtype) if scale is not None else rows
        return torch.where(mine.unsqueeze(-1), rows.to(output.dtype), output)

    def _project(self, module, inputs, output):
        # The matrix's rows hold the values already (`_sync`), so the logits are right as they are;
        # what the layer cannot do is pass their gradient to `values`. A node that returns the
        # logits unchanged and adds that gradient does it without copying the [positions, 262k]
        # logits forward and backward, as replacing their columns would.
        return _columns_gradient(output, inputs[0], self.values, self.rows.to(output.device))

    def merge(self) -> None:
        """Write the trained rows into the matrix for good and leave a plain model behind."""
        for hook in self.hooks:
            hook.remove()
        self.hooks = []
        if len(self.rows):
            self._sync()
            del self.model._parameters[self.PARAMETER]
        for weight in self.matrices.values():
            weight.requires_grad_(True)


def _columns_gradient(logits, hidden, values, rows):
    """`logits` unchanged; backward, also the gradient of `values` as if `logits[..., rows]` had been
    computed as `hidden @ values.T` (the gradient to `hidden` flows through the output layer,
    whose rows `rows` equal `values`)."""
    import torch

    class ColumnsGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, hidden, values):
            ctx.save_for_backward(hidden)
            return logits.view_as(logits)

        @staticmethod
        def backward(ctx, grad):
            (hidden,) = ctx.saved_tensors
            columns = grad.index_select(-1, rows).reshape(-1, len(rows))
            values_grad = columns.t().to(hidden.dtype) @ hidden.reshape(-1, hidden.size(-1))
            return grad, None, values_grad.to(values.dtype)

    return ColumnsGradient.apply(logits, hidden, values)

