"""Training precision: bf16 mixed precision where the hardware computes it natively, float32 elsewhere.

Under bf16 autocast the matrix products run in bfloat16 while the weights, the optimiser state and
the loss's log-softmax stay in float32, so the saved checkpoint is float32 either way.

"auto" turns it on for a CUDA GPU that supports bf16 and for a CPU with bf16 instructions
(AVX512-BF16 or AMX): on a 2-core Zen 4 with avx512_bf16 (torch 2.13's CPU build) bf16 matrix
products ran 2.6-3.5x as fast as float32 ones and a Mobile Actions training step 1.53x
(benchmarks/train_step_speed.py, docs/performance.md). A CPU without them would only emulate
bf16, so it stays in float32. `precision: fp32` turns bf16 off anywhere, `precision: bf16` on.
"""

from __future__ import annotations

CHOICES = ("auto", "bf16", "fp32")

# torch's own CPU feature checks (torch.cpu, private but stable since torch 2.3); missing ones count as absent.
NATIVE_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions, as torch detects them."""
    import torch

    return any(getattr(torch.cpu, check, lambda: False)() for check in NATIVE_BF16_CHECKS)


def uses_bf16(precision: str, device) -> bool:
    """Whether training on `device` runs under bf16 autocast for the recipe's `precision`."""
    import torch

    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()
