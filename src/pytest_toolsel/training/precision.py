"""Training precision: bf16 mixed precision on GPUs that compute it natively, float32 elsewhere.

Under bf16 autocast the matrix products run in bfloat16 while the weights, the optimiser state and
the loss's log-softmax stay in float32, so the saved checkpoint is float32 either way.

"auto" leaves the CPU in float32 even where it reports bf16 instructions: on a Zen 4 with
avx512_bf16 (torch 2.13's CPU build, oneDNN 3.12) bf16 matrix products ran at 0.5-0.65x the speed
of float32 ones and a training step took 1.8x as long (docs/performance.md). `precision: bf16`
still turns it on, for CPUs where it pays.
"""

from __future__ import annotations

CHOICES = ("auto", "bf16", "fp32")


def uses_bf16(precision: str, device) -> bool:
    """Whether training on `device` runs under bf16 autocast for the recipe's `precision`."""
    import torch

    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
