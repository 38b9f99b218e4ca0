"""Training batches hold rows of one policy each, so the loss runs each batch's prefix once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from conftest import case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.training import trainer
from pytest_toolsel.training.batches import PolicyBatchSampler
from pytest_toolsel.training.loss import ArgumentEndWeight, DigitWeight
from test_data import CONTACT_TOOLS_YAML, fast_recipe


def batches_of(sampler: PolicyBatchSampler) -> list[list[int]]:
    order = list(sampler)
    return [order[start : start + sampler.batch_size] for start in range(0, len(order), sampler.batch_size)]


def test_every_row_once_and_whole_batches_of_one_policy():
    groups = ["search"] * 13 + ["mobile"] * 21 + ["search"] * 3
    sampler = PolicyBatchSampler(groups, batch_size=8, seed=1)
    batches = batches_of(sampler)
    assert sorted(row for batch in batches for row in batch) == list(range(len(groups)))
    policies = [{groups[row] for row in batch} for batch in batches]
    # 16 search rows: 2 whole batches; 21 mobile rows: 2 whole batches and 5 left over, pooled last.
    assert [len(p) for p in policies[:4]] == [1, 1, 1, 1]
    assert sorted(p.pop() for p in policies[:4]) == ["mobile", "mobile", "search", "search"]
    assert [len(batch) for batch in batches] == [8, 8, 8, 8, 5]


def test_order_is_repeatable_and_reshuffled_every_epoch():
    groups = [random.Random(0).choice("ab") for _ in range(40)]
    first, second = PolicyBatchSampler(groups, 4, seed=7), PolicyBatchSampler(groups, 4, seed=7)
    epoch_one = list(first)
    assert epoch_one == list(second)
    assert list(first) != epoch_one  # the next epoch is shuffled anew
    assert list(PolicyBatchSampler(groups, 4, seed=8)) != epoch_one


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_any_batch_size_keeps_every_row(batch_size):
    groups = ["a"] * 5 + ["b"] * 7
    assert sorted(PolicyBatchSampler(groups, batch_size, seed=0)) == list(range(12))


def test_passes_repeat_a_policys_rows_within_each_epoch():
    groups = ["search"] * 6 + ["mobile"] * 10
    sampler = PolicyBatchSampler(groups, batch_size=4, seed=3, passes={"search": 3})
    assert len(sampler) == 28
    for _ in range(2):  # every epoch
        order = list(sampler)
        assert sorted(order) == sorted(list(range(6)) * 3 + list(range(6, 16)))
    # Passes of 1 are the plain order, row for row.
    assert list(PolicyBatchSampler(groups, 4, seed=3, passes={"search": 1})) == list(PolicyBatchSampler(groups, 4, seed=3))


@pytest.mark.parametrize("passes", [{}, {"contacts": 3}])
def test_the_trainer_feeds_the_loss_batches_of_one_policy(tmp_path, tiny_base, monkeypatch, passes):
    """Through the real trainer: each batch's rows start with one developer turn; the recipe's
    policy_passes repeat a policy's rows in each epoch."""
    batches: list[set[tuple[int, ...]]] = []
    real_loss = trainer.weighted_answer_loss

    def recording_loss(model, input_ids, attention_mask, labels, *head, **options):
        batches.append({tuple(row[:40].tolist()) for row in input_ids})  # the start of the developer turn
        return real_loss(model, input_ids, attention_mask, labels, *head, **options)

    monkeypatch.setattr(trainer, "weighted_answer_loss", recording_loss)
    weather = tmp_path / "weather.yaml"
    weather.write_text(case_file(
        "- prompt: held out\n  expect: get_weather\n",
        extra="train:\n" + "".join(f"  - prompt: Weather in city {i}?\n    call: get_weather\n    args: {{city: C{i}}}\n"
                                   for i in range(4)),
    ))
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(case_file(
        "- prompt: held out\n  expect: create_contact\n",
        extra="train:\n" + "".join(f"  - prompt: Save person {i}\n    call: create_contact\n"
                                   f"    args: {{first_name: P{i}, phone_number: '55{i}'}}\n" for i in range(2)),
        tools=CONTACT_TOOLS_YAML,
    ))
    suites = [load_suite(weather), load_suite(contacts)]
    assert suites[1].policy == "contacts"
    trainer.train(suites, str(tiny_base), tmp_path / "ckpt", fast_recipe(batch_size=2, epochs=2, policy_passes=passes))
    assert all(len(starts) == 1 for starts in batches), batches
    batches_per_policy = sorted(Counter(starts.pop() for starts in batches).values())
    # Batches of 2 over two epochs: weather's 4 rows make 4; contacts' 2 rows make 2, or 6 with 3 passes an epoch.
    assert batches_per_policy == ([2, 4] if not passes else [4, 6])


def test_a_policy_the_recipe_names_but_no_case_file_declares_is_a_warning(tmp_path):
    weather = tmp_path / "weather.yaml"
    weather.write_text(case_file(
        "- prompt: held out\n  expect: get_weather\n",
        extra="train:\n  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n",
    ))
    suites = [load_suite(weather)]
    with pytest.warns(UserWarning, match=r"policy_passes names 'wether', which no collected case file.*declared: 'weather'"):
        passes = trainer.passes_by_case_file(fast_recipe(policy_passes={"wether": 2}), suites)
    assert passes == {str(weather): 1}
    assert trainer.passes_by_case_file(fast_recipe(policy_passes={"weather": 2}), suites) == {str(weather): 2}


@pytest.mark.parametrize("weights", [{"digit_weight": 1.0, "argument_end_weight": 1.0, "prefix_gradient": True},
                                     {"digit_weight": 3.0, "argument_end_weight": 4.0, "prefix_gradient": False}])
def test_the_recipes_loss_weights_and_prefix_gradient_reach_the_loss(tmp_path, tiny_base, tiny_tokenizer, monkeypatch,
                                                                     weights):
    given, options_given = [], []
    real_loss = trainer.weighted_answer_loss

    def recording_loss(model, input_ids, attention_mask, labels, *head, **options):
        given.append(head)
        if model.training:
            options_given.append(options["prefix_gradient"])
        return real_loss(model, input_ids, attention_mask, labels, *head, **options)

    monkeypatch.setattr(trainer, "weighted_answer_loss", recording_loss)
    weather = tmp_path / "weather.yaml"
    weather.write_text(case_file(
        "- prompt: held out\n  expect: get_weather\n",
        extra="train:\n  - prompt: Weather in city 7?\n    call: get_weather\n    args: {city: C7}\n",
    ))
    trainer.train([load_suite(weather)], str(tiny_base), tmp_path / "ckpt", fast_recipe(tool_name_weight=7.0, **weights))
    (head_tokens, head_weight, emphases), = set(given)
    assert (head_tokens, head_weight) == (8, 7.0)
    # A weight of 1 adds nothing to the loss; each other weight adds its own emphasis.
    expected = {kind: weights[key] for kind, key in ((DigitWeight, "digit_weight"), (ArgumentEndWeight, "argument_end_weight"))
                if weights[key] != 1.0}
    assert {type(emphasis): emphasis.weight for emphasis in emphases} == expected
    assert all(len(emphasis.token_ids) == 10 for emphasis in emphases if isinstance(emphasis, DigitWeight))
    assert set(options_given) == {weights["prefix_gradient"]}
