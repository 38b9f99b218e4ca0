"""Tail averaging of the trained weights (the recipe's `average_weights_from`).

The checkpoint gets, instead of the weights after the last step, the plain mean of the weights
after every step from a given fraction of training on (stochastic weight averaging's uniform tail
average; Izmailov et al. 2018). A few hundred steps of batches of 8 leave the last weights at one
draw of the batch order, and that draw moves the held-out sets by 2-3 cases from seed to seed;
the mean over the last steps was meant to smooth that out (over three seeds it did not: half of
the steps averaged scored as the last step's weights or lower, docs/results.md, so the default
recipe leaves it off). Only trainable parameters are averaged
(the layers, the control tokens' rows, or LoRA's adapters), so the cost is one copy of them and one
in-place update per step.
"""

from __future__ import annotations


def first_averaged_step(max_steps: int, start_fraction: float) -> int:
    """The first optimiser step (1-based) whose weights enter the mean; at least the last step."""
    return min(max_steps, int(max_steps * start_fraction) + 1)


def weight_average_callback(start_fraction: float):
    """A `TrainerCallback` that, at the end of training, writes the mean of the trainable weights after
    each step from `first_averaged_step` on into the model."""
    import torch
    from transformers import TrainerCallback

    class TailAverage(TrainerCallback):
        def __init__(self):
            self.parameters: list = []
            self.mean: list | None = None
            self.first = 1

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
            self.first = first_averaged_step(state.max_steps, start_fraction)

        @torch.no_grad()
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step < self.first:
                return
            current = [parameter.detach() for parameter in self.parameters]
            if self.mean is None:
                self.mean = [weight.clone() for weight in current]
            else:  # running mean over the steps averaged so far: mean += (current - mean) / count
                count = state.global_step - self.first + 1
                for mean, weight in zip(self.mean, current):
                    mean.lerp_(weight, 1.0 / count)

        @torch.no_grad()
        def on_train_end(self, args, state, control, **kwargs):
            if self.mean is not None:
                for parameter, mean in zip(self.parameters, self.mean):
                    parameter.copy_(mean)
                self.mean = None

    return TailAverage()
