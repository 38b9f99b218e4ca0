"""Tool-choice confidence on a real (tiny) Gemma 3: teacher-forced scores of each declared tool name."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import LESSONS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render
from pytest_toolsel.inference.confidence import ToolChoice, _scorable_prefix_length, _sequence_log_probs, call_prefix, tool_choices

NAMES = [tool["function"]["name"] for tool in TOOLS]


@pytest.fixture(scope="module")
def loaded(loaded_either_window):
    return loaded_either_window


def prompt(text: str) -> str:
    return render(prompt_messages(text), TOOLS, add_generation_prompt=True)


def reference_log_prob(loaded, tokens: list[int], start: int) -> float:
    """The same score from one unpadded forward pass over every position."""
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([tokens])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return float(sum(log_probs[position - 1, tokens[position]] for position in range(start, len(tokens))))


def test_batched_prefix_sharing_scores_match_unpadded_forward_passes(loaded):
    tokenizer = loaded.tokenizer
    rows = []
    for text in ["What is the weather in Paris?", "How much is ACME stock?", "Tell me a joke and then some more words."]:
        for name in NAMES:
            start = len(tokenizer.encode(prompt(text), add_special_tokens=False))
            rows.append((tokenizer.encode(prompt(text) + call_prefix(name), add_special_tokens=False), start))
    shared = _scorable_prefix_length(loaded.model, rows)
    assert (shared > 100) == (loaded.model.config.sliding_window == 1024)  # so both paths run
    batched = _sequence_log_probs(loaded, rows, batch_size=4)
    for (tokens, start), score in zip(rows, batched):
        assert score == pytest.approx(reference_log_prob(loaded, tokens, start), abs=1e-3)


@pytest.mark.parametrize("text, expected", [(p, calls[0][0]) for p, calls in LESSONS if len(calls) == 1])
def test_taught_tool_is_the_most_probable_choice(loaded, text, expected):
    (choice,) = tool_choices(loaded, [prompt(text)], [NAMES])
    assert choice.top == expected
    assert math.fsum(choice.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert choice.margin({expected}) > 0.5


def test_margin_is_expected_minus_best_other():
    choice = ToolChoice({"a": 0.5, "b": 0.3, "c": 0.2})
    assert choice.margin({"a"}) == pytest.approx(0.2)
    assert choice.margin({"c"}) == pytest.approx(-0.3)
    assert choice.margin({"a", "b"}) == pytest.approx(0.3)
    assert choice.margin({"a", "b", "c"}) is None  # nothing to compete with
    assert ToolChoice({"a": 1.0}).margin(set()) is None  # `expect: none` has no expected tool
