"""Sampled trials judged together (verdicts/trials.py): pass^k, a minimum pass rate, --strict-calls."""

from __future__ import annotations

import pytest

from conftest import case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.functiongemma.chat_format import END_CALL, START_CALL
from pytest_toolsel.inference.results_cache import Answer
from pytest_toolsel.verdicts.trials import SampledOutcome, answer_of, judged_answer

WEATHER = f"{START_CALL}call:get_weather{{city:<escape>Paris<escape>}}{END_CALL}"
STOCKS = f"{START_CALL}call:get_stock_price{{ticker:<escape>ACME<escape>}}{END_CALL}"
SLOPPY = f"{START_CALL}call:get_weather{{city:<escape>Paris<escape>,units:<escape>metric<escape>}}{END_CALL}"


@pytest.fixture
def pair(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(case_file("- {id: paris, prompt: Weather in Paris?, expect: get_weather}\n"))
    suite = load_suite(path)
    return suite, suite.cases[0]


def sampled(*outputs: str) -> Answer:
    trials = tuple(Answer(output) for output in outputs)
    return Answer(outputs[0], trials=trials)


def test_a_case_passes_when_every_trial_passes(pair):
    outcome = judged_answer(*pair, sampled(WEATHER, WEATHER, WEATHER))
    assert isinstance(outcome, SampledOutcome)
    assert outcome.passed and outcome.pass_rate == 1 and outcome.verdict.reasons == ()


def test_one_failing_trial_fails_the_case_and_is_the_one_shown(pair):
    outcome = judged_answer(*pair, sampled(WEATHER, WEATHER, STOCKS, "I cannot help."))
    assert not outcome.passed and outcome.pass_rate == 0.5
    assert (outcome.shown_trial, outcome.output) == (3, STOCKS)
    assert outcome.verdict.called == ("get_stock_price",)
    assert outcome.verdict.reasons == (
        "2 of 4 sampled trials failed (pass rate 50%; every trial must pass)",
        "trial 3: did not call get_weather",
        "trial 3: called get_stock_price, which the case does not expect",
    )
    assert outcome.tools_chosen == {"get_weather": 2, "get_stock_price": 1, "none": 1}
    assert outcome.describe_trials() == "2 of 4 trials passed; chose get_weather 2, get_stock_price 1, none 1"


@pytest.mark.parametrize(("bar", "passes"), [(0.75, True), (0.8, False)])
def test_a_minimum_pass_rate_is_a_share_of_the_trials(pair, bar, passes):
    outcome = judged_answer(*pair, sampled(WEATHER, STOCKS, WEATHER, WEATHER), min_pass_rate=bar)
    assert outcome.passed is passes and outcome.passes(strict_calls=False) is passes
    assert outcome.output == (WEATHER if passes else STOCKS)  # a passing case shows a passing trial


def test_a_rate_that_floating_point_puts_a_hair_above_the_trials_still_counts(pair):
    """0.28 * 25 is 7.000000000000001: seven passing trials of 25 meet a 28% bar."""
    outcome = judged_answer(*pair, sampled(*[WEATHER] * 7, *[STOCKS] * 18), min_pass_rate=0.28)
    assert outcome.passed


def test_strict_calls_counts_only_the_trials_whose_calls_fit_their_schemas(pair):
    every = judged_answer(*pair, sampled(WEATHER, SLOPPY, WEATHER, WEATHER))
    assert every.passes(strict_calls=False) and not every.passes(strict_calls=True)
    assert every.shown_trial == 2 and every.verdict.schema_problems  # the trial --strict-calls fails on
    most = judged_answer(*pair, sampled(WEATHER, SLOPPY, WEATHER, WEATHER), min_pass_rate=0.75)
    assert most.passes(strict_calls=True)


def test_the_trials_travel_and_are_judged_again_the_same(pair):
    outcome = judged_answer(*pair, sampled(WEATHER, STOCKS))
    travelled = Answer.from_json(answer_of(outcome).as_json())
    assert [trial.output for trial in travelled.trials] == [WEATHER, STOCKS]
    assert judged_answer(*pair, travelled) == outcome
    plain = judged_answer(*pair, Answer(WEATHER))
    assert not isinstance(plain, SampledOutcome) and answer_of(plain).as_json() == Answer(WEATHER).as_json()
