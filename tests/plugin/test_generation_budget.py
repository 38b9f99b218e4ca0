"""The generation budget follows the case files, and an answer the budget cuts is reported as cut."""

from __future__ import annotations

import json

from conftest import case_file
from pytest_toolsel.functiongemma.chat_format import call_message
from pytest_toolsel.inference.budget import FALLBACK_BUDGET, MIN_MARGIN, answer_tokens, cut_at, data_budget
from pytest_toolsel.models.loading import load_tokenizer

PARIS = "- prompt: What is the weather in Paris?\n  expect: get_weather\n  id: paris\n"
PARIS_WITH_ARGS = PARIS + "  args: {city: Paris}\n"


def run(pytester, checkpoint, *args):
    return pytester.runpytest("-p", "no:cacheprovider", "--model", str(checkpoint), "--no-baseline", *args)


def results(pytester) -> dict:
    return json.loads((pytester.path / "reports" / "results.json").read_text())


def test_the_budget_is_the_longest_answer_plus_a_margin(tiny_checkpoint):
    tokenizer = load_tokenizer(str(tiny_checkpoint))
    short = call_message([("get_weather", {"city": "Oslo"})])
    long = call_message([("get_weather", {"city": "Oslo " * 60})])
    assert answer_tokens(tokenizer, long) > answer_tokens(tokenizer, short) + 50
    budget = data_budget(tokenizer, [short, long])
    longest = answer_tokens(tokenizer, long)
    assert (budget.longest_answer, budget.tokens) == (longest, longest + max(MIN_MARGIN, longest // 4))
    assert data_budget(tokenizer, []).tokens == FALLBACK_BUDGET


def test_an_answer_is_cut_only_when_the_budget_ended_it_before_a_stop():
    stops = {1}
    assert cut_at([5, 6, 7], "abc", 3, stops, ["<end_of_turn>"]) == 3
    assert cut_at([5, 6, 1], "ab", 3, stops, ["<end_of_turn>"]) is None  # the stop token came last
    assert cut_at([5, 6], "ab", 3, stops, ["<end_of_turn>"]) is None  # ended before the budget
    assert cut_at([5, 6, 7], "a<end_of_turn>", 3, stops, ["<end_of_turn>"]) is None  # a stop string


def test_the_default_budget_follows_the_reference_calls(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PARIS_WITH_ARGS))
    run(pytester, tiny_checkpoint).assert_outcomes(passed=1)
    reference = call_message([("get_weather", {"city": "Paris"})])
    expected = data_budget(load_tokenizer(str(tiny_checkpoint)), [reference])
    generation = results(pytester)["generation"]
    assert generation["max_new_tokens"] == expected.tokens != FALLBACK_BUDGET
    assert generation["budget"] == expected.describe()


def test_an_answer_cut_by_the_budget_fails_as_cut_not_as_malformed(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PARIS))
    result = run(pytester, tiny_checkpoint, "--max-new-tokens", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*answer cut at 5 tokens by the generation budget before it ended; raise --max-new-tokens*"])
    assert "malformed" not in result.stdout.str()
    case = results(pytester)["candidate"]["cases"][0]
    assert case["cut_at"] == 5 and not case["passed"]
    assert results(pytester)["generation"]["max_new_tokens"] == 5
    # The whole answer, with room to end, passes: the cut was the budget's, not the model's.
    run(pytester, tiny_checkpoint, "--max-new-tokens", "64").assert_outcomes(passed=1)


def test_a_cut_answer_is_never_an_exact_call(pytester, tiny_checkpoint):
    # "Tell me a joke." is taught to get a text answer: cut at 2 tokens it has made no call yet, but
    # what it would have written next is unknown, so it matches no expected call list, not even [].
    joke = "- prompt: Tell me a joke.\n  expect: none\n  id: joke\n"
    pytester.makefile(".yaml", policy=case_file(joke))
    run(pytester, tiny_checkpoint, "--max-new-tokens", "2").assert_outcomes(failed=1)
    case = results(pytester)["candidate"]["cases"][0]
    assert case["cut_at"] == 2 and case["exact_call"] is False
    run(pytester, tiny_checkpoint).assert_outcomes(passed=1)
    assert results(pytester)["candidate"]["cases"][0]["exact_call"] is True
