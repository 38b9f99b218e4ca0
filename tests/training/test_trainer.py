"""Training pieces: recipes, training records, control tokens, and the toolsel-train command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tiny
from conftest import case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.cli import main as toolsel_train
from pytest_toolsel.functiongemma.base_prep import add_control_tokens, prepare_for_function_calling, token_words
from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, START_RESPONSE, chat_template
from pytest_toolsel.models.loading import ModelLoadError, check_local_dir
from pytest_toolsel.training.data import data_hash, split, training_records
from pytest_toolsel.training.recipe import Recipe, RecipeError, load_recipe, parse_override

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_recipe_is_valid_and_complete():
    recipe = load_recipe(ROOT / "tuning" / "recipe.yaml")
    shipped = json.loads(json.dumps(recipe.as_dict()))
    assert set(shipped) == set(Recipe().as_dict())
    assert recipe == Recipe()  # a project without tuning/recipe.yaml trains the same way
    assert (recipe.learning_rate, recipe.epochs) == (pytest.approx(5e-5), 3.5)


def test_recipe_overrides_are_typed_and_checked(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 3\nlearning_rate: 2.0e-4\n")
    recipe = load_recipe(path, dict([parse_override("batch_size=4"), parse_override("neftune_noise_alpha=5")]))
    assert (recipe.epochs, recipe.learning_rate, recipe.batch_size, recipe.neftune_noise_alpha) == (3.0, 2e-4, 4, 5)
    with pytest.raises(RecipeError, match="unknown recipe key 'epoch'"):
        load_recipe(path, {"epoch": 2})
    with pytest.raises(RecipeError, match="must look like key=value"):
        parse_override("epochs")
    for bad in ("eight", None, 2.5, True):
        with pytest.raises(RecipeError, match=f"recipe key 'batch_size' must be like 8, got {bad!r}"):
            load_recipe(path, {"batch_size": bad})
    with pytest.raises(RecipeError, match="'learning_rate' must be a number"):
        load_recipe(None, {"learning_rate": "fast"})
    assert load_recipe(None, {"prefix_gradient": False}).prefix_gradient is False
    assert load_recipe(None, dict([parse_override("prefix_gradient=256")])).prefix_gradient == 256
    for bad in ("no", 0, -5, 2.5, None):
        with pytest.raises(RecipeError, match=f"'prefix_gradient' must be true, false or a positive number of tokens, got {bad!r}"):
            load_recipe(None, {"prefix_gradient": bad})
    assert load_recipe(None, {"policy_passes": {"search": 2}}).policy_passes == {"search": 2}
    assert load_recipe(None, dict([parse_override("policy_passes={search: 2}")])).policy_passes == {"search": 2}
    assert load_recipe(None, {"policy_passes": None}).policy_passes == {}
    for bad in ({"search": 0}, {"search": 1.5}, {"search": True}, {"search": "2"}):
        with pytest.raises(RecipeError, match=r"'policy_passes': policy 'search' must map to a whole number of passes"):
            load_recipe(None, {"policy_passes": bad})
    with pytest.raises(RecipeError, match="'policy_passes' must map policy names to passes"):
        load_recipe(None, {"policy_passes": 2})


def test_training_records_are_conversational_prompt_completion(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        case_file(
            "- prompt: held out\n  expect: get_weather\n",
            extra="system: Be brief.\ntrain:\n"
            "  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n"
            "  - prompt: Hi there\n    call: none\n    answer: Hello!\n",
        )
    )
    records = training_records([load_suite(path)])
    assert records[0]["prompt"] == [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Lima?"},
    ]
    call = records[0]["completion"][0]["tool_calls"][0]["function"]
    assert call == {"name": "get_weather", "arguments": {"city": "Lima"}}
    assert records[1]["completion"] == [{"role": "assistant", "content": "Hello!"}]
    assert [tool["function"]["name"] for tool in json.loads(records[0]["tools"])] == ["get_weather", "get_stock_price"]
    assert data_hash(records) == data_hash(records[::-1])
    assert data_hash(records) != data_hash(records[:1])


def test_eval_split_is_deterministic_and_disjoint():
    records = [{"n": i} for i in range(40)]
    train, held = split(records, 0.1, seed=3)
    assert len(held) == 4 and len(train) == 36
    assert split(records, 0.1, seed=3) == (train, held)
    assert not {r["n"] for r in held} & {r["n"] for r in train}
    assert split(records[:5], 0.1, seed=3) == (records[:5], [])


def test_control_tokens_are_added_as_single_tokens_with_word_mean_embeddings():
    assert token_words("<start_function_call>") == "start function call"

    stripped = _without_control_tokens()
    model = tiny.build_model(stripped)
    rows_before = model.get_input_embeddings().weight.shape[0]
    added = prepare_for_function_calling(model, stripped)
    assert list(added) == list(CONTROL_TOKENS)
    assert model.get_input_embeddings().weight.shape[0] == rows_before + len(CONTROL_TOKENS)
    embeddings = model.get_input_embeddings().weight
    for token in CONTROL_TOKENS:
        assert len(stripped.encode(token, add_special_tokens=False)) == 1
        word_ids = stripped.encode(token_words(token), add_special_tokens=False)
        row = stripped.convert_tokens_to_ids(token)
        assert embeddings[row].tolist() == pytest.approx(embeddings[word_ids].mean(dim=0).tolist(), abs=1e-6)
    assert stripped.chat_template == chat_template()
    assert stripped.convert_tokens_to_ids(START_RESPONSE) in model.generation_config.eos_token_id
    assert model.generation_config.do_sample is False
    assert add_control_tokens(model, stripped) == {}  # idempotent


def _without_control_tokens():
    """A byte-level BPE tokenizer with the turn markers but none of the FunctionGemma control tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(["start function call end declaration response escape"] * 5, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def test_toolsel_train_writes_an_hf_native_checkpoint(tmp_path, tiny_base, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "p.yaml").write_text(
        case_file(
            "- prompt: held out\n  expect: get_weather\n",
            extra="train:\n  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n",
        )
    )
    output = tmp_path / "ckpt"
    code = toolsel_train([str(cases), "--output", str(output), "--base-model", str(tiny_base),
                          "--set", "epochs=1", "--report-dir", str(tmp_path / "reports")])
    assert code == 0
    assert f"checkpoint written to {output}" in capsys.readouterr().out
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tools=json.loads(training_records([load_suite(cases / "p.yaml")])[0]["tools"]),
        add_generation_prompt=True, tokenize=False,
    )
    assert rendered.startswith("<bos><start_of_turn>developer\nYou are a model that can do function calling")
    metadata = json.loads((output / "toolsel.json").read_text())
    assert metadata["recipe"]["epochs"] == 1 and metadata["base_model"] == str(tiny_base)
    assert {"torch", "transformers", "trl", "pytest_toolsel"} <= set(metadata["versions"])
    generation = json.loads((output / "generation_config.json").read_text())
    assert generation["do_sample"] is False


def test_toolsel_train_reports_bad_input_without_a_traceback(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(case_file("- prompt: x\n  expect: get_weather\n"))
    assert toolsel_train([str(tmp_path / "p.yaml"), "--output", str(tmp_path / "out")]) == 2
    assert "nothing to train on" in capsys.readouterr().err
    assert toolsel_train([str(tmp_path / "p.yaml"), "--set", "epoch=1"]) == 2
    assert "unknown recipe key 'epoch'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_answer_head_weights_emphasise_the_first_answer_tokens():
    import torch

    from pytest_toolsel.training.loss import answer_head_weights

    labels = torch.tensor([[-100, -100, 5, 6, 7, 8], [-100, 5, 6, 7, -100, -100]])
    weights = answer_head_weights(labels, head_tokens=2, weight=4.0)
    assert weights.tolist() == [[0, 0, 4, 4, 1, 1], [0, 4, 4, 1, 0, 0]]
    assert answer_head_weights(labels, head_tokens=2, weight=1.0).tolist() == (labels != -100).float().tolist()


def test_digit_weight_raises_digit_labels_outside_the_head_and_never_lowers_the_head(tiny_tokenizer):
    import torch

    from pytest_toolsel.training.loss import DigitWeight, answer_head_weights, digit_token_ids

    digits = digit_token_ids(tiny_tokenizer)
    assert [tiny_tokenizer.decode([i]) for i in digits] == list("0123456789")
    one, six, colon = tiny_tokenizer.convert_tokens_to_ids(["1", "6", ":"])
    labels = torch.tensor([[-100, one, 5, six, colon, six, -100]])
    weights = answer_head_weights(labels, head_tokens=2, weight=4.0, emphases=(DigitWeight(digits, 3.0),))
    assert weights.tolist() == [[0, 4, 4, 3, 1, 3, 0]]


def test_argument_end_weight_lands_on_the_token_after_each_closing_escape_only(tiny_tokenizer):
    import torch

    from pytest_toolsel.training.loss import ArgumentEndWeight, answer_head_weights, loss_emphases

    answer = "<start_function_call>call:send_email{body:<escape>Hi, there}<escape>,to:<escape>a@b.c<escape>}<end_function_call>"
    ids = tiny_tokenizer(answer, add_special_tokens=False)["input_ids"]
    tokens = tiny_tokenizer.convert_ids_to_tokens(ids)
    labels = torch.tensor([[-100, *ids]])
    (emphasis,) = loss_emphases(Recipe(digit_weight=1.0, argument_end_weight=6.0), tiny_tokenizer)
    assert isinstance(emphasis, ArgumentEndWeight)
    weights = answer_head_weights(labels, head_tokens=0, weight=1.0, emphases=(emphasis,))[0, 1:].tolist()
    weighted = [(position, tokens[position]) for position, weight in enumerate(weights) if weight == 6.0]
    escapes = [position for position, token in enumerate(tokens) if token == "<escape>"]
    # After the 2nd and the 4th <escape> (those that close a value): the ',' to the next argument
    # and the '}' that ends the call. Not the ',' and '}' inside the body, not after opening escapes.
    assert weighted == [(escapes[1] + 1, ","), (escapes[3] + 1, "}")]
    assert set(weights) == {1.0, 6.0}
    assert loss_emphases(Recipe(digit_weight=1.0, argument_end_weight=1.0), tiny_tokenizer) == ()


def test_removed_recipe_keys_are_refused_by_name():
    for key in ("value_weight", "value_tokens"):
        with pytest.raises(RecipeError, match=f"recipe key '{key}' was removed: .*; delete it from the recipe"):
            load_recipe(None, {key: 2})


def weather_training_file(path: Path, examples: int) -> Path:
    path.write_text(
        case_file(
            "- prompt: held out\n  expect: get_weather\n",
            extra="train:\n" + "".join(
                f"  - prompt: Weather in city number {i}?\n    call: get_weather\n    args: {{city: C{i}}}\n"
                for i in range(examples)
            ),
        )
    )
    return path


def test_killed_training_leaves_nothing_loadable_and_a_rerun_cleans_up_and_finishes(tmp_path, tiny_base):
    weather_training_file(tmp_path / "p.yaml", 12)
    output = tmp_path / "ckpt"
    command = [sys.executable, "-c", "import sys; from pytest_toolsel.cli import main; sys.exit(main())",
               str(tmp_path / "p.yaml"), "--output", str(output), "--base-model", str(tiny_base)]
    training = subprocess.Popen([*command, "--set", "epochs=500"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".ckpt.partial-*/trainer")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the 500 epochs
    training.kill()
    training.wait()
    assert list(tmp_path.glob(".ckpt.partial-*")), "the killed run should have been caught mid-training"
    assert not output.exists()
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_local_dir(output)

    finished = subprocess.run([*command, "--set", "epochs=1"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    check_local_dir(output)
    assert not list(tmp_path.glob(".ckpt.partial-*"))  # the killed run's leftovers are gone too


def test_accelerate_launch_trains_on_two_processes_and_rank_zero_alone_publishes(tmp_path, tiny_base):
    """The multi-GPU path (`accelerate launch --multi_gpu`); without GPUs its two processes talk over gloo."""
    weather_training_file(tmp_path / "p.yaml", 8)
    output = tmp_path / "ckpt"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    done = subprocess.run(
        [*launch, "-m", "pytest_toolsel.cli", str(tmp_path / "p.yaml"), "--output", str(output),
         "--base-model", str(tiny_base), "--set", "epochs=2", "--set", "batch_size=2",
         "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint written to") == 1
    check_local_dir(output)
    metadata = json.loads((output / "toolsel.json").read_text())
    steps = [entry["step"] for entry in metadata["log_history"] if "loss" in entry]
    # 8 examples, 2 per process per step, 2 processes: 2 steps per epoch (one process alone: 4).
    assert max(steps) == 4
    assert not list(tmp_path.glob(".ckpt.partial-*"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_same_recipe_and_seed_train_the_same_weights(tmp_path, tiny_base, precision):
    from safetensors.torch import load_file

    from pytest_toolsel.training import trainer

    rows = "".join(f"  - prompt: Weather in city {n}?\n    call: get_weather\n    args: {{city: C{n}}}\n" for n in range(6))
    cases = tmp_path / "p.yaml"
    cases.write_text(case_file("- prompt: held out\n  expect: get_weather\n", extra="train:\n" + rows))
    recipe = load_recipe(ROOT / "tuning" / "recipe.yaml", {"epochs": 2, "batch_size": 2, "precision": precision})
    weights = []
    for run in ("a", "b"):
        trainer.train([load_suite(cases)], str(tiny_base), tmp_path / run, recipe)
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    first, second = weights
    base = load_file(tiny_base / "model.safetensors")
    assert any(name in base and base[name].shape == tensor.shape and not base[name].equal(tensor)
               for name, tensor in first.items())  # training moved the weights: equal runs are not untrained ones
    assert first.keys() == second.keys()
    differing = [name for name in first if not first[name].equal(second[name])]
    assert not differing, f"{precision}: {len(differing)} of {len(first)} tensors differ between two runs, e.g. {differing[:3]}"
