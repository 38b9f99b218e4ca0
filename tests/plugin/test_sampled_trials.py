"""--samples N: every case answered N times by seeded sampling, passing only when every trial passes
(pass^k) or --min-pass-rate of them; on the tiny checkpoint the tests build, never a stand-in model."""

from __future__ import annotations

import json

import pytest

from conftest import case_file, runs_without_and_with_xdist

CASES = """\
- prompt: What is the weather in Paris?
  expect: get_weather
  id: paris
- prompt: Is it raining in Oslo today?
  expect: get_weather
  id: oslo
- prompt: How much is ACME stock?
  expect: get_stock_price
  id: acme
- prompt: Price of GLOBEX shares please
  expect: get_stock_price
  id: globex
- prompt: weather?
  expect: get_weather
  id: vague
"""
# Hot enough that some of the tiny checkpoint's trials disagree (seeded: the same ones every run),
# so that pass^k and --min-pass-rate have something to decide.
SAMPLED = ["--samples", "8", "--temperature", "0.85", "--top-k", "0", "--top-p", "1"]


def run(pytester, checkpoint, *args):
    return pytester.runpytest("-p", "no:cacheprovider", "--model", str(checkpoint), "--no-baseline", *args)


def cases_of(pytester) -> dict[str, dict]:
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    return {case["id"]: case for case in document["candidate"]["cases"]}


def test_a_case_passes_only_when_every_trial_passes(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    result = run(pytester, tiny_checkpoint, *SAMPLED, "-v")
    cases = cases_of(pytester)
    for case in cases.values():
        trials = case["trials"]
        assert len(trials) == 8 and sum(case["tools_chosen"].values()) == 8
        assert case["pass_rate"] == sum(trial["passed"] for trial in trials) / 8
        assert case["passed"] == (case["pass_rate"] == 1)  # pass^8
        for trial in trials:  # each trial judged as a greedy answer is: exactly the expected tool
            assert trial["passed"] == (trial["called"] == case["expected"])
    rates = sorted(case["pass_rate"] for case in cases.values())
    assert 0 < rates[0] < 1 and rates[-1] == 1  # some trials miss, and some cases never do
    passing = sum(case["passed"] for case in cases.values())
    result.assert_outcomes(passed=passing, failed=5 - passing)
    failing = next(case for case in cases.values() if not case["passed"])
    failed = sum(not trial["passed"] for trial in failing["trials"])
    result.stdout.fnmatch_lines([
        f"*tool selection failed: {failed} of 8 sampled trials failed (pass rate *; every trial must pass); trial *",
        f"*trials:     {8 - failed} of 8 trials passed; chose *; shown below: trial *",
        f"*sampled trials: 8 per case; {passing}/5 cases passed every trial, mean pass rate *",
    ])
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert "## Sampled trials" in markdown and "answered 8 times by seeded sampling (temperature 0.85, top-k off" in markdown
    mixed = [i for i, case in cases.items() if 0 < case["pass_rate"] < 1]
    assert f"### Cases whose trials disagree ({len(mixed)})" in markdown and f"- `{mixed[0]}` (policy)" in markdown
    generation = json.loads((pytester.path / "reports" / "results.json").read_text())["generation"]
    assert generation["do_sample"] is True
    assert {k: generation[k] for k in ("samples", "temperature", "top_k", "top_p", "seed", "min_pass_rate")} == {
        "samples": 8, "temperature": 0.85, "top_k": 0, "top_p": 1.0, "seed": 0, "min_pass_rate": 1.0}


def test_min_pass_rate_lets_a_case_pass_on_most_of_its_trials(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    strict = run(pytester, tiny_checkpoint, *SAMPLED)
    rates = {i: case["pass_rate"] for i, case in cases_of(pytester).items()}
    lenient = run(pytester, tiny_checkpoint, *SAMPLED, "--min-pass-rate", "0.5")
    cases = cases_of(pytester)
    assert {i: case["pass_rate"] for i, case in cases.items()} == rates  # the same trials, judged otherwise
    assert {i for i, case in cases.items() if case["passed"]} == {i for i, rate in rates.items() if rate >= 0.5}
    # Some case passes on most trials but not all, and some fails on most: the bar decides both ways.
    assert sum(rate >= 0.5 for rate in rates.values()) > sum(rate == 1 for rate in rates.values())
    assert any(rate < 0.5 for rate in rates.values())
    strict.assert_outcomes(passed=sum(rate == 1 for rate in rates.values()), failed=sum(rate < 1 for rate in rates.values()))
    lenient.assert_outcomes(passed=sum(rate >= 0.5 for rate in rates.values()), failed=sum(rate < 0.5 for rate in rates.values()))


def test_the_same_seed_gives_the_same_trials_at_any_batch_size(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    trials = {}
    for batch_size, seed in (("1", "0"), ("16", "0"), ("16", "1")):
        run(pytester, tiny_checkpoint, *SAMPLED, "--batch-size", batch_size, "--sample-seed", seed)
        trials[batch_size, seed] = {i: [t["output"] for t in case["trials"]] for i, case in cases_of(pytester).items()}
    assert trials["1", "0"] == trials["16", "0"]
    assert trials["16", "1"] != trials["16", "0"]  # the seed, and only the seed, picks the trials


def test_the_same_trials_and_reports_under_xdist(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    runs = runs_without_and_with_xdist(pytester, "--model", str(tiny_checkpoint), "--no-baseline", *SAMPLED)
    (plain, plain_markdown, _), (shared, shared_markdown, result) = runs["0"], runs["2"]
    assert shared == plain and shared_markdown == plain_markdown
    assert all(len(case["trials"]) == 8 for case in shared["candidate"]["cases"])
    result.stdout.fnmatch_lines(["*pytest-xdist: gw0 answered *, gw1 answered * of 5 cases*"])


def test_trials_are_cached_by_their_sampling_settings(pytester, tiny_checkpoint):
    """A rerun reuses the trials (whatever --min-pass-rate judges them by); another seed draws anew."""
    pytester.makefile(".yaml", policy=case_file(CASES))
    cached = lambda *args: pytester.runpytest("--model", str(tiny_checkpoint), "--no-baseline", *SAMPLED, *args)  # noqa: E731
    cached()
    first = {i: case["trials"] for i, case in cases_of(pytester).items()}
    again = cached("--min-pass-rate", "0.5")
    again.stdout.fnmatch_lines([f"5/5 answers of {tiny_checkpoint} reused from pytest's cache*"])
    assert {i: case["trials"] for i, case in cases_of(pytester).items()} == first
    reseeded = cached("--sample-seed", "3")
    assert "reused from pytest's cache" not in reseeded.stdout.str()


def test_python_tests_ask_greedily_under_samples(pytester, tiny_checkpoint, tiny_base):
    """`toolsel_model` answers one greedy answer, and the before model answers its question so too."""
    pytester.makefile(".yaml", policy=case_file(CASES))
    pytester.makepyfile(test_asked="""
        def test_oslo(toolsel_model):
            answer = toolsel_model.assert_selects("Is it raining in Oslo today?", "get_weather", policy="policy")
            assert answer.output.count("<start_function_call>") == 1
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", str(tiny_checkpoint), "--base-model",
                                str(tiny_base), *SAMPLED)
    result.assert_outcomes(passed=4, failed=2)  # the file's cases as sampled before, and the Python test
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    for run in ("candidate", "baseline"):
        cases = {case["id"]: case for case in document[run]["cases"]}
        assert "trials" not in cases["test_oslo"] and len(cases["oslo"]["trials"]) == 8


def test_greedy_stays_the_default(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    run(pytester, tiny_checkpoint).assert_outcomes(passed=4, failed=1)
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    assert document["generation"]["do_sample"] is False
    assert "sampled" not in document["candidate"] and all("trials" not in case for case in document["candidate"]["cases"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--temperature", "0.7"], "--temperature only applies to sampled trials: add --samples N"),
        (["--top-p", "0.9", "--min-pass-rate", "0.5"], "--top-p, --min-pass-rate only applies to sampled trials"),
        (["--samples", "0"], "argument --samples: must be a whole number of at least 1, got '0'"),
        (["--samples", "4", "--temperature", "0"], "argument --temperature: must be a number above 0, got '0'"),
        (["--samples", "4", "--top-p", "1.5"], "argument --top-p: must be a number above 0 and at most 1, got '1.5'"),
        (["--samples", "4", "--top-k", "-1"], "argument --top-k: must be a whole number of at least 0"),
        (["--samples", "4", "--min-pass-rate", "80%"], "argument --min-pass-rate: must be a number above 0 and at most 1"),
    ],
    ids=["temperature-alone", "two-alone", "no-samples", "zero-temperature", "top-p", "top-k", "pass-rate"],
)
def test_bad_sampling_options_are_usage_errors(pytester, args, message):
    pytester.makefile(".yaml", policy=case_file(CASES))
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
