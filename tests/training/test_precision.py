"""Training precision: bf16 autocast where asked for (by default where the hardware has bf16); weights saved in float32."""

from __future__ import annotations

import json

import pytest
import torch
from test_embeddings import trained_weights

from pytest_toolsel.training.precision import NATIVE_BF16_CHECKS, cpu_has_native_bf16, uses_bf16
from pytest_toolsel.training.recipe import RecipeError, load_recipe

def test_precision_choices():
    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)
    assert uses_bf16("auto", cpu) is cpu_has_native_bf16()
    with pytest.raises(RecipeError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        load_recipe(None, {"precision": "fp16"})


def test_bf16_training_saves_float32_weights_and_says_so(tmp_path, plain_tiny_base):
    weights = trained_weights(tmp_path, plain_tiny_base, "precision=bf16")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    metadata = json.loads((tmp_path / "ckpt-precision=bf16" / "toolsel.json").read_text())
    assert metadata["bf16"] is True


@pytest.mark.parametrize("native", [True, False])
def test_auto_trains_in_bf16_only_on_a_cpu_with_bf16_instructions(monkeypatch, native):
    for check in NATIVE_BF16_CHECKS:
        monkeypatch.setattr(torch.cpu, check, lambda: native, raising=False)
    cpu = torch.device("cpu")
    assert uses_bf16("auto", cpu) is native
    assert uses_bf16("fp32", cpu) is False and uses_bf16("bf16", cpu) is True  # the recipe key overrides it


def test_a_torch_without_the_cpu_checks_means_float32(monkeypatch):
    for check in NATIVE_BF16_CHECKS:
        monkeypatch.delattr(torch.cpu, check, raising=False)
    assert not cpu_has_native_bf16() and not uses_bf16("auto", torch.device("cpu"))
