"""The built-in greedy loop: bfloat16-screened argmax, grouped prefill, finished rows leaving the batch,
and tool-call scores taken from the generation pass. Each is checked against the plain computation."""

from __future__ import annotations

import pytest
import torch
from conftest import TOOLS
from test_generation import loaded, one_at_a_time, rendered  # noqa: F401 (fixtures shared with that module)

from pytest_toolsel.inference import decoding, generation, scoring, screening
from pytest_toolsel.inference.confidence import choice_from_scores, tool_call_tokens, tool_choices
from pytest_toolsel.inference.generation import GenerationSettings, generate, generate_scored

NAMES = [tool["function"]["name"] for tool in TOOLS]


def output_layer(weight):
    layer = torch.nn.Linear(weight.size(1), weight.size(0), bias=False)
    layer.weight.data = weight
    return layer


def test_screened_argmax_is_the_float32_argmax_even_for_near_ties():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(5000, 64, generator=generator) * 0.05
    weight[4001] = weight[17] * (1 + 2**-16)  # logits ~1e-2 apart, far below the screen's resolution
    weight[4002] = weight[17]  # an exact tie: the lower id wins, as torch.argmax decides
    weight[30] = weight[17] + 1e-5
    weight[4950] = weight[17] * (1 + 2**-17)  # past the screen's last whole block
    head = screening.GreedyHead(output_layer(weight))
    hidden = torch.randn(300, 64, generator=generator) * 40
    hidden[:100] = weight[17] * 5000  # rows where 17, 30, 4001 and 4002 compete
    chosen = head(hidden)
    assert torch.equal(chosen, torch.nn.functional.linear(hidden, weight).argmax(dim=-1))
    assert set(chosen[:100].tolist()) <= {17, 30, 4001, 4950}


def test_screening_slack_bounds_the_real_bfloat16_error():
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(20000, 640, generator=generator) * 0.04
    hidden = torch.randn(64, 640, generator=generator) * 6
    hidden[:, :8] *= 30  # a few large dimensions, as real hidden states have
    approx = torch.nn.functional.linear(hidden.bfloat16(), weight.bfloat16()).double()
    exact = hidden.double() @ weight.double().T
    norms = hidden.norm(dim=-1) * weight.norm(dim=1).max()
    top = approx.amax(dim=-1).float()
    # The slack bounds the sum of two logits' errors, twice over: one logit's error is under a quarter.
    per_logit = screening.screening_slack(norms, top.abs(), 640).double() / 4
    assert ((approx - exact).abs() <= per_logit.unsqueeze(1)).all()
    assert (approx - exact).abs().max() > 0  # the screen does round


@pytest.mark.parametrize("group", [2, 5])
def test_grouped_prefill_matches_one_at_a_time(loaded, rendered, one_at_a_time, monkeypatch, group):
    monkeypatch.setattr(decoding, "PREFILL_GROUP", group)
    assert [answer.text for answer in generate(loaded, rendered, GenerationSettings(batch_size=64))] == one_at_a_time


def test_models_the_loop_cannot_mirror_go_through_transformers_generate(loaded, rendered, monkeypatch):
    monkeypatch.setattr(loaded.model.generation_config, "repetition_penalty", 1.3)
    assert not decoding.supports(loaded.model)
    monkeypatch.undo()
    assert decoding.supports(loaded.model)
    calls = []
    real = generation._generate_with_transformers
    monkeypatch.setattr(decoding, "supports", lambda model: False)
    monkeypatch.setattr(generation, "_generate_with_transformers", lambda *a: calls.append(1) or real(*a))
    answers = generate(loaded, rendered, GenerationSettings(batch_size=4))
    monkeypatch.undo()
    assert calls and answers == generate(loaded, rendered, GenerationSettings(batch_size=4))


def test_stop_strings_end_an_answer(loaded):
    tokenizer = loaded.tokenizer
    rule = decoding.StopRule(frozenset(), ("</call>",))
    assert rule.reached(tokenizer, tokenizer.encode("call:x{}</call>", add_special_tokens=False))
    assert not rule.reached(tokenizer, tokenizer.encode("call:x{}</cal", add_special_tokens=False))
    assert decoding.StopRule(frozenset({7})).reached(tokenizer, [3, 7])


def test_scores_from_the_generation_pass_equal_teacher_forced_tool_choices(loaded, rendered, monkeypatch):
    calls = tool_call_tokens(loaded.tokenizer, rendered, NAMES)
    assert calls is not None
    followed, from_prompts = [], []
    real_part, real_scores = scoring._ScoringAlongside._part, scoring.continuation_scores

    def part(self, *args):
        real_part(self, *args)
        followed.append(len(self.following))

    monkeypatch.setattr(scoring._ScoringAlongside, "_part", part)
    def scores_from_prompts(model, rows, continuations, allowed=None):
        from_prompts.append(rows.mask.size(0))
        return real_scores(model, rows, continuations, allowed)

    monkeypatch.setattr(scoring, "continuation_scores", scores_from_prompts)
    answers, scores = generate_scored(loaded, rendered, GenerationSettings(batch_size=16), calls)
    monkeypatch.undo()
    assert answers == generate(loaded, rendered, GenerationSettings(batch_size=16))
    expected = tool_choices(loaded, rendered, [NAMES] * len(rendered))
    got = [choice_from_scores(NAMES, row) for row in scores]
    for mine, reference in zip(got, expected):
        assert mine.probabilities == pytest.approx(reference.probabilities, abs=2e-4)
    # Taught prompts answer with a tool call, which greedy decoding feeds; the others are scored from
    # their prompts: both ways ran.
    assert sum(followed) > 0 and sum(from_prompts) > 0


@pytest.mark.parametrize("shared_prefix", [False, True], ids=["whole-prompts", "shared-prefix"])
@pytest.mark.parametrize("leaves", [False, True], ids=["follows-to-the-end", "leaves-midway"])
def test_scores_alongside_greedy_decoding_equal_scores_from_the_prompts(loaded, rendered, leaves, shared_prefix):
    """Continuations built from a greedy answer, so that decoding feeds one of them (and, with
    `leaves`, turns away from it after one more token): the scores must not depend on that. With a
    shared prefix the cache grows in place (`decoding._growing`) while copies of it are fed too."""
    from pytest_toolsel.models.prefix import attends_to_everything, prefix_cache, shared_prefix_length

    tokenizer, model = loaded.tokenizer, loaded.model
    encoded = [tokenizer.encode(text, add_special_tokens=False) for text in rendered]
    shared = shared_prefix_length(encoded) if shared_prefix else 0
    # Prompts longer than the window share the prefix by position (models.window_masks).
    by_position = bool(shared) and not attends_to_everything(model, max(map(len, encoded)) + 64)
    prefix, suffixes = encoded[0][:shared], [ids[shared:] for ids in encoded]
    stop = decoding.StopRule(frozenset(generation.stop_token_ids(tokenizer)))
    with torch.inference_mode():
        cache = prefix_cache(model.base_model, torch.tensor([prefix]), by_position) if prefix else None

        def start():
            return decoding.start(model, tokenizer, prefix, cache, suffixes, by_position)

        answer = decoding.greedy(model, tokenizer, start(), 64, stop)[0]
        assert len(answer) >= 4
        other = next(t for t in range(5, 50) if t != answer[0])
        followed = answer[:2] + ([other, other] if leaves else answer[2:4])
        continuations = [followed, [other, answer[0]], [other, answer[1], answer[0]]]
        reference = scoring.continuation_scores(model, start(), continuations)
        answers, scores = scoring.greedy_and_scores(model, tokenizer, start(), 64, stop, continuations)
        assert answers == decoding.greedy(model, tokenizer, start(), 64, stop)
    assert answers[0] == answer
    for mine, theirs in zip(scores, reference):
        assert mine == pytest.approx(theirs, abs=1e-4)


def test_a_hidden_state_without_candidates_still_gets_the_argmax():
    weight = torch.randn(300, 16, generator=torch.Generator().manual_seed(2))
    hidden = torch.randn(3, 16, generator=torch.Generator().manual_seed(3))
    hidden[1, 4] = float("nan")
    chosen = screening.GreedyHead(output_layer(weight))(hidden)
    assert torch.equal(chosen, torch.nn.functional.linear(hidden, weight).argmax(dim=-1))


def test_the_screen_is_rebuilt_when_the_weights_change(loaded):
    head = screening.greedy_head(loaded.model)
    assert screening.greedy_head(loaded.model) is head
    weight = loaded.model.get_output_embeddings().weight
    with torch.no_grad():
        weight.mul_(1.0)  # an in-place write, as an optimizer step makes
    assert screening.greedy_head(loaded.model) is not head
