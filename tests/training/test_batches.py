"""Training batches hold rows of one policy each, so the loss runs each batch's prefix once."""

from __future__ import annotations

import random

import pytest

from conftest import case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.training import trainer
from pytest_toolsel.training.batches import PolicyBatchSampler
from pytest_toolsel.training.loss import DigitWeight
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


def test_the_trainer_feeds_the_loss_batches_of_one_policy(tmp_path, tiny_base, monkeypatch):
    """Through the real trainer: each batch's rows start with one developer turn."""
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
                                   f"    args: {{first_name: P{i}, phone_number: '55{i}'}}\n" for i in range(4)),
        tools=CONTACT_TOOLS_YAML,
    ))
    trainer.train([load_suite(weather), load_suite(contacts)], str(tiny_base), tmp_path / "ckpt",
                   fast_recipe(batch_size=2, epochs=2))
    assert len(batches) == 8  # 8 rows, batches of 2, two epochs
    assert all(len(starts) == 1 for starts in batches), batches
    assert len(set().union(*batches)) == 2  # both policies were trained


@pytest.mark.parametrize("weights", [{"digit_weight": 1.0}, {"digit_weight": 3.0, "prefix_gradient": False}])
def test_the_recipes_digit_weight_and_prefix_gradient_reach_the_loss(tmp_path, tiny_base, tiny_tokenizer, monkeypatch,
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
    trainer.train([load_suite(weather)], str(tiny_base), tmp_path / "ckpt", fast_recipe(**weights))
    (head_tokens, head_weight, emphases), = set(given)
    assert (head_tokens, head_weight) == (8, 5.0)
    # A weight of 1 adds nothing to the loss; each other weight adds its own emphasis.
    expected = {DigitWeight: weights["digit_weight"]} if weights["digit_weight"] != 1.0 else {}
    assert {type(emphasis): emphasis.weight for emphasis in emphases} == expected
    assert all(len(emphasis.token_ids) == 10 for emphasis in emphases)
    assert set(options_given) == {weights.get("prefix_gradient", True)}
