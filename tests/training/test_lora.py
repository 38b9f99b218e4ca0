"""LoRA (peft) as a recipe choice: adapters train, and the saved checkpoint is a plain Hugging Face
model with them merged, FunctionGemma's vocabulary and template, that loads and answers as any other."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_embeddings import EMBEDDINGS, changed_rows, prepared_base, trained_weights  # noqa: F401 (fixture)

from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, FUNCTIONGEMMA_TOKEN_IDS
from pytest_toolsel.models.loading import load_model
from pytest_toolsel.training.recipe import RecipeError, load_recipe


def test_lora_adapters_are_merged_into_a_plain_checkpoint(tmp_path, plain_tiny_base, prepared_base):
    weights = trained_weights(tmp_path, plain_tiny_base, "lora_rank=4", "learning_rate=1e-2")
    assert set(weights) <= set(prepared_base)  # the base's own tensors: no adapter left unmerged
    checkpoint = tmp_path / "ckpt-lora_rank=4-learning_rate=1e-2"
    assert not (checkpoint / "adapter_config.json").exists()
    # The adapted layers changed, the embedding matrix only in the control tokens' rows.
    adapted = [name for name in weights if name.endswith(("q_proj.weight", "down_proj.weight"))]
    assert adapted and all(not torch.equal(weights[name], prepared_base[name]) for name in adapted)
    changed = changed_rows(prepared_base[EMBEDDINGS], weights[EMBEDDINGS])
    assert changed and changed <= set(FUNCTIONGEMMA_TOKEN_IDS.values())
    norms = [name for name in weights if name.endswith("layernorm.weight")]
    assert norms and all(torch.equal(weights[name], prepared_base[name]) for name in norms)  # not adapted: frozen

    loaded = load_model(str(checkpoint), torch.device("cpu"))
    rendered = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                                                 "parameters": {"type": "object", "properties": {}}}}],
        add_generation_prompt=True, tokenize=False,
    )
    assert "<start_function_declaration>declaration:get_weather{" in rendered
    assert all(len(loaded.tokenizer.encode(token, add_special_tokens=False)) == 1 for token in CONTROL_TOKENS)
    metadata = json.loads((checkpoint / "toolsel.json").read_text())
    assert metadata["recipe"]["lora_rank"] == 4


def test_lora_needs_the_control_rows_to_train_and_a_positive_rank():
    assert load_recipe(None, {"lora_rank": 8}).lora_rank == 8
    with pytest.raises(RecipeError, match="set train_embeddings to 'control'"):
        load_recipe(None, {"lora_rank": 8, "train_embeddings": "all"})
    with pytest.raises(RecipeError, match="lora_rank must be 0"):
        load_recipe(None, {"lora_rank": -1})
