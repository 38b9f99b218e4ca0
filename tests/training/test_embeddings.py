"""`train_embeddings: control`: a fine-tune changes the control tokens' embedding rows and the layers,
and leaves every other row of the (tied) embedding matrix exactly as the base has it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import case_file
from pytest_toolsel.cli import main as toolsel_train
from pytest_toolsel.functiongemma.base_prep import prepare_for_function_calling
from pytest_toolsel.functiongemma.chat_format import FUNCTIONGEMMA_TOKEN_IDS
from pytest_toolsel.training.recipe import RecipeError, load_recipe

TRAIN = (
    "train:\n"
    "  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n"
    "  - prompt: Price of ACME?\n    call: get_stock_price\n    args: {ticker: ACME}\n"
)
EMBEDDINGS = "model.embed_tokens.weight"


def trained_weights(tmp_path, base, *overrides: str) -> dict[str, torch.Tensor]:
    """The weights toolsel-train writes for two examples, two epochs, with the recipe `overrides`."""
    (tmp_path / "p.yaml").write_text(case_file("- prompt: held out\n  expect: get_weather\n", extra=TRAIN))
    output = tmp_path / ("ckpt-" + "-".join(overrides))
    settings = ["epochs=2", "batch_size=1", "eval_fraction=0", *overrides]
    code = toolsel_train([str(tmp_path / "p.yaml"), "--output", str(output), "--base-model", str(base),
                          *(argument for setting in settings for argument in ("--set", setting))])
    assert code == 0
    return load_file(output / "model.safetensors")


@pytest.fixture(scope="module")
def prepared_base(plain_tiny_base) -> dict[str, torch.Tensor]:
    """The base's weights as training starts: control tokens placed and initialised."""
    model = AutoModelForCausalLM.from_pretrained(plain_tiny_base, dtype=torch.float32)
    prepare_for_function_calling(model, AutoTokenizer.from_pretrained(plain_tiny_base))
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def changed_rows(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    return set(torch.nonzero((before != after).any(dim=1)).flatten().tolist())


def test_control_trains_the_control_rows_and_the_layers_and_nothing_else_of_the_embeddings(tmp_path, plain_tiny_base,
                                                                                          prepared_base):
    weights = trained_weights(tmp_path, plain_tiny_base, "train_embeddings=control")
    control_rows = set(FUNCTIONGEMMA_TOKEN_IDS.values())
    changed = changed_rows(prepared_base[EMBEDDINGS], weights[EMBEDDINGS])
    assert changed and changed <= control_rows  # <start_function_call>, <escape>, ... are in every answer
    queries = [name for name in weights if name.endswith("q_proj.weight")]
    assert queries and all(not torch.equal(weights[name], prepared_base[name]) for name in queries)


def test_all_trains_the_rows_of_ordinary_tokens_too(tmp_path, plain_tiny_base, prepared_base):
    weights = trained_weights(tmp_path, plain_tiny_base, "train_embeddings=all")
    changed = changed_rows(prepared_base[EMBEDDINGS], weights[EMBEDDINGS])
    assert changed - set(FUNCTIONGEMMA_TOKEN_IDS.values())


def test_train_embeddings_takes_known_values_and_refuses_weight_decay_with_control():
    assert load_recipe(None, {"train_embeddings": "control"}).train_embeddings == "control"
    with pytest.raises(RecipeError, match="train_embeddings must be one of all, control"):
        load_recipe(None, {"train_embeddings": "some"})
    with pytest.raises(RecipeError, match="weight_decay 0.01 would shrink them"):
        load_recipe(None, {"train_embeddings": "control", "weight_decay": 0.01})
