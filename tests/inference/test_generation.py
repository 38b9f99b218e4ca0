"""Batched, prefix-reusing generation must answer exactly as plain one-prompt-at-a-time greedy decoding."""

from __future__ import annotations

import pytest
import tiny
import torch
from conftest import PROMPTS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render
from pytest_toolsel.functiongemma.parsing import parse_output
from pytest_toolsel.inference.generation import GenerationSettings, decode_answer, generate, stop_token_ids
from pytest_toolsel.models.loading import load_model
from pytest_toolsel.models.prefix import attends_to_everything, shared_prefix_length

@pytest.fixture(scope="module")
def loaded(loaded_either_window):
    return loaded_either_window


@pytest.fixture(scope="module")
def rendered():
    return [render(prompt_messages(prompt), TOOLS, add_generation_prompt=True) for prompt in PROMPTS]


@pytest.fixture(scope="module")
def one_at_a_time(loaded, rendered) -> list[str]:
    """The reference: each prompt alone, no padding, no shared cache, plain `generate`."""
    stops = stop_token_ids(loaded.tokenizer)
    answers = []
    for prompt in rendered:
        ids = torch.tensor([loaded.tokenizer.encode(prompt, add_special_tokens=False)])
        with torch.inference_mode():
            output = loaded.model.generate(
                input_ids=ids, do_sample=False, max_new_tokens=64, eos_token_id=stops,
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
        answers.append(decode_answer(loaded.tokenizer, output[0, ids.shape[1]:].tolist(), stops))
    return answers


@pytest.mark.parametrize("reuse_prefix", [True, False], ids=["prefix-cache", "no-prefix-cache"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_generation_matches_one_at_a_time(loaded, rendered, one_at_a_time, batch_size, reuse_prefix):
    settings = GenerationSettings(batch_size=batch_size, max_new_tokens=64, reuse_prefix=reuse_prefix)
    answers = [answer.text for answer in generate(loaded, rendered, settings)]
    assert [parse_output(a).calls for a in answers] == [parse_output(a).calls for a in one_at_a_time]
    assert answers == one_at_a_time
    # the taught prompts must come out as taught, or this comparison would prove little
    assert sum("<start_function_call>" in answer for answer in answers) >= 5


def test_prompts_longer_than_the_sliding_window_share_their_prefix_by_position(loaded, rendered, monkeypatch):
    """The window-64 model's prompts are longer than its window: the prefix is still shared, its
    cache keeps every token and attention follows real positions (the parity test above holds it to
    one-prompt-at-a-time answers); the wide-window twin shares it the plain way."""
    from pytest_toolsel.inference import decoding, generation

    longest = max(len(loaded.tokenizer.encode(p, add_special_tokens=False)) for p in rendered) + 64
    window = loaded.model.config.sliding_window
    assert attends_to_everything(loaded.model, longest) == (window >= longest)
    assert (window >= longest) == (window == 1024)  # so each of the two code paths is exercised above
    seen = []
    real_start = decoding.start
    monkeypatch.setattr(decoding, "start", lambda *a: seen.append((len(a[2]), a[5])) or real_start(*a))
    generate(loaded, rendered, GenerationSettings(batch_size=4))
    shared = shared_prefix_length([loaded.tokenizer.encode(p, add_special_tokens=False) for p in rendered])
    assert seen and all(prefix == shared >= generation.MIN_SHARED_BY_POSITION for prefix, _ in seen)
    assert all(by_position == (window < longest) for _, by_position in seen)


def test_shared_prefix_leaves_every_prompt_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2, 3]]) == 0
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0


def test_out_of_memory_halves_the_batch_and_keeps_every_answer(loaded, rendered, one_at_a_time, monkeypatch):
    """A CUDA OOM is injected for batches above 2 prompts; the answers must not change."""
    from pytest_toolsel.inference import generation

    real_batch = generation._generate_batch
    sizes = []

    def tight_memory(loaded, prefix, suffixes, config, continuations):
        sizes.append(len(suffixes))
        if len(suffixes) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real_batch(loaded, prefix, suffixes, config, continuations)

    monkeypatch.setattr(generation, "_generate_batch", tight_memory)
    answers = [answer.text for answer in generate(loaded, rendered, GenerationSettings(batch_size=8))]
    assert answers == one_at_a_time
    assert sizes[0] == 8 and max(size for size in sizes[1:]) <= 4 and min(sizes) <= 2
