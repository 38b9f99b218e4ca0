"""`average_weights_from`: the checkpoint holds the mean of the trainable weights over the last part of
training, computed by a Trainer callback; the recipe key is checked where it is read."""

from __future__ import annotations

import pytest
import torch
from test_embeddings import EMBEDDINGS, changed_rows, prepared_base, trained_weights  # noqa: F401 (a fixture)
from transformers import TrainerState, TrainingArguments
from transformers.trainer_callback import TrainerControl

from pytest_toolsel.functiongemma.chat_format import FUNCTIONGEMMA_TOKEN_IDS
from pytest_toolsel.training.averaging import first_averaged_step, weight_average_callback
from pytest_toolsel.training.recipe import RecipeError, load_recipe, parse_override


@pytest.mark.parametrize("steps, fraction, first", [(315, 0.5, 158), (4, 0.5, 3), (4, 0.0, 1), (4, 0.99, 4), (1, 0.9, 1)])
def test_the_first_averaged_step_is_the_one_after_the_fraction_and_never_after_the_last(steps, fraction, first):
    assert first_averaged_step(steps, fraction) == first


def test_the_model_gets_the_mean_of_the_trainable_weights_after_each_step_from_the_first_averaged_one(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].weight.requires_grad_(False)  # frozen: never averaged, left as it is
    frozen = model[1].weight.detach().clone()
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to="none"), TrainerControl()
    state = TrainerState(max_steps=4)
    callback = weight_average_callback(0.5)  # steps 3 and 4
    callback.on_train_begin(args, state, control, model=model)
    seen = []
    for step in range(1, 5):
        with torch.no_grad():  # stands in for an optimiser step
            for parameter in model.parameters():
                parameter.add_(float(step))
        seen.append({name: tensor.detach().clone() for name, tensor in model.named_parameters()})
        state.global_step = step
        callback.on_step_end(args, state, control, model=model)
    callback.on_train_end(args, state, control, model=model)
    for name, parameter in model.named_parameters():
        if name == "1.weight":
            assert torch.equal(parameter, seen[-1][name]) and not torch.equal(parameter, frozen)
        else:
            torch.testing.assert_close(parameter, (seen[2][name] + seen[3][name]) / 2)


@pytest.mark.parametrize("bad", [1, 1.5, -0.1, "half", True])
def test_a_fraction_outside_zero_to_one_is_refused_with_the_key_and_the_source(tmp_path, bad):
    with pytest.raises(RecipeError, match=r"command line: recipe key 'average_weights_from' must be null \(off\)"):
        load_recipe(None, {"average_weights_from": bad})
    path = tmp_path / "recipe.yaml"
    path.write_text(f"average_weights_from: {bad!r}\n")  # 'half' in quotes is a YAML string too
    with pytest.raises(RecipeError, match=f"{path}: recipe key 'average_weights_from'"):
        load_recipe(path)
    assert load_recipe(None, dict([parse_override("average_weights_from=0.5")])).average_weights_from == 0.5
    assert load_recipe(None).average_weights_from is None


def test_a_trained_checkpoint_holds_the_average_and_leaves_the_base_rows_alone(tmp_path, plain_tiny_base,
                                                                            prepared_base):
    # Two examples, two epochs, batches of one: four steps.
    last = trained_weights(tmp_path, plain_tiny_base, "average_weights_from=null")
    last_only = trained_weights(tmp_path, plain_tiny_base, "average_weights_from=0.99")  # averages step 4 alone
    averaged = trained_weights(tmp_path, plain_tiny_base, "average_weights_from=0")  # steps 1 to 4
    assert all(torch.equal(last_only[name], tensor) for name, tensor in last.items())
    layers = [name for name in last if name.endswith("q_proj.weight")]
    assert layers and all(not torch.equal(averaged[name], last[name]) for name in layers)
    # The control tokens' rows are averaged too, and every other row stays the base's.
    control = set(FUNCTIONGEMMA_TOKEN_IDS.values())
    assert changed_rows(last[EMBEDDINGS], averaged[EMBEDDINGS]) & control
    assert changed_rows(prepared_base[EMBEDDINGS], averaged[EMBEDDINGS]) <= control
