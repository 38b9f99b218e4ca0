"""Sampled trials: the draw itself, and seeded generation on a tiny model that no other row moves."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import PROMPTS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render
from pytest_toolsel.inference.generation import GenerationSettings, generate
from pytest_toolsel.inference.sampling import Sampling, SeededRows, draw, trial_seed


@pytest.fixture(scope="module")
def rendered():
    return [render(prompt_messages(prompt), TOOLS, add_generation_prompt=True) for prompt in PROMPTS]


def noise(rows: int, width: int, seed: int = 0):
    return torch.rand(rows, width, generator=torch.Generator().manual_seed(seed))


def test_top_k_one_draws_the_most_likely_token_whatever_the_noise():
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        assert draw(logits, noise(6, 40, seed), top_k=1, top_p=1.0).tolist() == logits.argmax(dim=-1).tolist()


def test_the_draw_follows_the_distribution():
    """Two tokens of probability 1/4 and 3/4: 20,000 seeded draws land within a point of that."""
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(20_000, 2)
    tokens = draw(logits, noise(20_000, 2), top_k=0, top_p=1.0)
    assert tokens.float().mean().item() == pytest.approx(0.75, abs=0.01)
    # At temperature 2 (the sampler halves the logits) the split is 1 : sqrt(3).
    halved = draw(logits / 2, noise(20_000, 2, seed=1), top_k=0, top_p=1.0)
    assert halved.float().mean().item() == pytest.approx(math.sqrt(3) / (1 + math.sqrt(3)), abs=0.01)


def test_top_k_and_top_p_keep_the_fewest_likeliest_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(20_000, 4)
    tokens = draw(logits, noise(20_000, 4), top_k=0, top_p=0.75).tolist()
    assert set(tokens) == {0, 1}  # 0.5 + 0.3 reach 0.75; the rest are never drawn
    assert tokens.count(0) / len(tokens) == pytest.approx(0.5 / 0.8, abs=0.01)
    assert set(draw(logits, noise(20_000, 4, seed=1), top_k=3, top_p=1.0).tolist()) == {0, 1, 2}


def test_a_rows_token_does_not_depend_on_the_other_rows_nor_on_rounding():
    logits, numbers = torch.randn(16, 300, generator=torch.Generator().manual_seed(1)), noise(16, 300, seed=2)
    together = draw(logits, numbers, top_k=64, top_p=0.95).tolist()
    assert together == [draw(logits[i : i + 1], numbers[i : i + 1], top_k=64, top_p=0.95).item() for i in range(16)]
    # Batching moves logits by float rounding; the tokens stay.
    nudged = logits + 1e-6 * torch.randn(16, 300, generator=torch.Generator().manual_seed(3))
    assert draw(nudged, numbers, top_k=0, top_p=1.0).tolist() == draw(logits, numbers, top_k=0, top_p=1.0).tolist()


def test_trial_seeds_are_fixed_and_distinct_per_question_and_trial():
    seeds = {trial_seed(0, question, trial) for question in ("a", "b") for trial in range(4)}
    assert len(seeds) == 8 and all(0 <= seed < 2**64 for seed in seeds)
    assert trial_seed(0, "a", 1) == trial_seed(0, "a", 1) != trial_seed(1, "a", 1)


def test_sampling_the_most_likely_token_generates_the_greedy_answers(loaded_either_window, rendered):
    settings = GenerationSettings(batch_size=4, max_new_tokens=40)
    greedy = generate(loaded_either_window, rendered, settings)
    only_the_best = SeededRows(Sampling(1, temperature=1.0, top_k=1, top_p=1.0), tuple(range(len(rendered))))
    assert generate(loaded_either_window, rendered, settings, sampled=only_the_best) == greedy
    assert sum("<start_function_call>" in answer.text for answer in greedy) >= 5  # taught answers, not noise


def test_a_trial_is_the_same_alone_or_in_any_batch(loaded_either_window, rendered):
    """Each row draws from its own seed: the batch size and the other rows do not move it."""
    sampling = Sampling(3, temperature=1.5, top_k=0, top_p=1.0, seed=0)
    rows = [prompt for prompt in rendered for _ in range(3)]
    seeded = SeededRows(sampling, tuple(trial_seed(0, str(i // 3), i % 3) for i in range(len(rows))))
    together = [g.text for g in generate(loaded_either_window, rows, GenerationSettings(batch_size=16, max_new_tokens=24),
                                         sampled=seeded)]
    alone = [generate(loaded_either_window, [row], GenerationSettings(batch_size=1, max_new_tokens=24),
                      sampled=seeded.rows([i]))[0].text for i, row in enumerate(rows)]
    assert together == alone
    assert len(set(together)) > len(rendered)  # the trials of a prompt differ: it is sampling, not greedy decoding
