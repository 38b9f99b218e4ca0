"""Training precision: bf16 mixed precision on GPUs that compute it natively, float32 elsewhere.

Under bf16 autocast the matrix products run in bfloat16 while the weights, the optimiser state and
the loss's log-softmax stay in float32, so the saved checkpoint is float32 either way.

"auto" leaves the CPU in float32, although bf16 pays where the CPU has bf16 instructions: on a
2-core Zen 4 with avx512_bf16 (torch 2.13's CPU build) whole trainings ran 1.2x faster under
`precision: bf16` (docs/performance.md). The default recipe's held-out figures were measured in
float32, and the one recipe measured over three seeds in both precisions differed (docs/results.md),
so bf16 on the CPU stays a choice until a default is measured in it.
"""

from __future__ import annotations

CHOICES = ("auto", "bf16", "fp32")


def uses_bf16(precision: str, device) -> bool:
    """Whether training on `device` runs under bf16 autocast for the recipe's `precision`."""
    import torch

    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
