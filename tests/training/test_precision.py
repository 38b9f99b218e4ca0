"""Training precision: bf16 autocast where asked for (by default on CUDA only); weights saved in float32."""

from __future__ import annotations

import json

import pytest
import torch
from test_embeddings import trained_weights

from pytest_toolsel.training.precision import uses_bf16
from pytest_toolsel.training.recipe import RecipeError, load_recipe

def test_precision_choices():
    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)
    assert not uses_bf16("auto", cpu)  # the default recipe was measured in float32: see precision.py
    with pytest.raises(RecipeError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        load_recipe(None, {"precision": "fp16"})


def test_bf16_training_saves_float32_weights_and_says_so(tmp_path, plain_tiny_base):
    weights = trained_weights(tmp_path, plain_tiny_base, "precision=bf16")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    metadata = json.loads((tmp_path / "ckpt-precision=bf16" / "toolsel.json").read_text())
    assert metadata["bf16"] is True
