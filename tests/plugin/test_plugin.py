"""The plugin as users run it: pytester sessions against tiny checkpoints the tests build."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import tiny
from conftest import LESSONS, TOOLS, TOOLS_YAML, case_file, runs_without_and_with_xdist

PASSING = """\
- prompt: What is the weather in Paris?
  expect: get_weather
  id: paris
- prompt: How much is ACME stock?
  expect: get_stock_price
"""
# The checkpoint answers Oslo with get_weather; this case insists on stocks, so it must fail.
MISSING = """\
- prompt: Is it raining in Oslo today?
  expect: get_stock_price
  id: oslo-wrong
"""


# How the miss above reads, whether a case file's case or a Python test (toolsel_model) asks it.
OSLO_MISS_REPORT = [
    "*tool selection failed: did not call get_stock_price; called get_weather*",
    "*prompt:*'Is it raining in Oslo today?'",
    "*expected:*get_stock_price",
    '*called:*get_weather({"city": "Oslo"})',
    "*raw output:*<start_function_call>call:get_weather{city:<escape>Oslo<escape>}<end_function_call>*",
    "*tool probabilities: get_weather *, get_stock_price *",
]


def run(pytester, checkpoint, *args, base=None):
    extra = ["--base-model", str(base)] if base else ["--no-baseline"]
    return pytester.runpytest("-p", "no:cacheprovider", "--model", str(checkpoint), *extra, *args)


def test_each_case_is_a_test_with_a_readable_id(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, tiny_checkpoint, "-v")
    result.stdout.fnmatch_lines(
        ["*policy.yaml::paris PASSED*", "*policy.yaml::how-much-is-acme-stock PASSED*", "*2 passed*"]
    )
    assert result.ret == 0


def test_wrong_tool_fails_with_prompt_expected_calls_and_raw_output(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(OSLO_MISS_REPORT)
    assert "Traceback" not in result.stdout.str()


def test_parallel_calls_and_no_call_expectations(pytester, tiny_checkpoint):
    pytester.makefile(
        ".yaml",
        policy=case_file(
            """\
            - prompt: Weather in Rome and the price of ACME?
              expect: [get_stock_price, get_weather]
            - prompt: Tell me a joke.
              expect: none
            - prompt: Weather in Rome and the price of ACME?
              id: only-weather
              expect: get_weather
            """
        ),
    )
    result = run(pytester, tiny_checkpoint, "-v")
    result.stdout.fnmatch_lines(["*only-weather FAILED*", "*called get_stock_price, which the case does not expect*"])
    result.assert_outcomes(passed=2, failed=1)


def test_argument_checks(pytester, tiny_checkpoint):
    pytester.makefile(
        ".yaml",
        policy=case_file(
            """\
            - prompt: What is the weather in Paris?
              expect: get_weather
              id: contains-ok
              args: {city: {contains: par}}
            - prompt: What is the weather in Paris?
              expect: get_weather
              id: regex-miss
              args: {city: {regex: '^Lon'}}
            - prompt: Weather in Rome and the price of ACME?
              expect: [get_weather, get_stock_price]
              id: parallel-exact
              args: {get_weather: {city: Rome}, get_stock_price: {ticker: ACME}}
            """
        ),
    )
    result = run(pytester, tiny_checkpoint, "-v")
    result.stdout.fnmatch_lines(["*contains-ok PASSED*", "*regex-miss FAILED*", "*parallel-exact PASSED*"])
    result.stdout.fnmatch_lines(["*argument check failed: get_weather.city regex '^Lon', got 'Paris'*"])


def test_case_xfail_key_marks_the_test(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(MISSING.rstrip("\n") + "\n  xfail: known gap\n" + PASSING))
    result = run(pytester, tiny_checkpoint, "-rx")
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*oslo-wrong*known gap*"])


@pytest.mark.parametrize(
    ("bar", "exit_code", "line"),
    [
        ("0.5", pytest.ExitCode.OK, None),
        ("0.9", pytest.ExitCode.TESTS_FAILED, "FAILED: accuracy 66.7% (2/3) is below --min-accuracy 90%"),
    ],
)
def test_min_accuracy_turns_misses_into_xfail_and_gates_the_session(pytester, tiny_checkpoint, bar, exit_code, line):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, "--min-accuracy", bar)
    result.assert_outcomes(passed=2, xfailed=1)
    assert result.ret == exit_code
    if line:
        result.stdout.fnmatch_lines([f"*{line}*"])


def test_per_suite_min_accuracy(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", strict=case_file(PASSING + MISSING, extra="min_accuracy: 0.9\n"))
    pytester.makefile(".yaml", lenient=case_file(MISSING, extra="policy: lenient\nmin_accuracy: 0.0\n"))
    result = run(pytester, tiny_checkpoint)
    result.assert_outcomes(passed=2, xfailed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED: suite strict (*strict.yaml) scored 2/3, below its min_accuracy 90%*"])
    assert "suite lenient" not in result.stdout.str()


def test_deselected_cases_are_not_generated(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, "-k", "paris")
    result.assert_outcomes(passed=1)
    results = json.loads((pytester.path / "reports" / "results.json").read_text())
    assert [case["id"] for case in results["candidate"]["cases"]] == ["paris"]


def test_reports_compare_before_and_after(pytester, tiny_checkpoint, tiny_base):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, base=tiny_base)
    result.stdout.fnmatch_lines(
        ["*pytest-toolsel: tool-selection accuracy*", "before*tiny-base*", "after*tiny-checkpoint*2/3 = 67%*"]
    )
    results = json.loads((pytester.path / "reports" / "results.json").read_text())
    candidate, baseline = results["candidate"], results["baseline"]
    assert (candidate["passed"], candidate["total"]) == (2, 3)
    assert candidate["accuracy"] == pytest.approx(2 / 3)
    assert baseline["model"] == str(tiny_base) and baseline["total"] == 3
    assert {"id", "suite", "prompt", "expected", "called", "passed", "output"} <= set(candidate["cases"][0])
    oslo = next(case for case in candidate["cases"] if case["id"] == "oslo-wrong")
    assert oslo["expected"] == ["get_stock_price"] and oslo["called"] == ["get_weather"] and not oslo["passed"]
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert "| after  |" in markdown and "McNemar" in markdown and "## Per expected tool" in markdown
    assert f"Fixed ({len(results['comparison']['fixed'])})" in markdown


def test_tool_choice_confidence_is_reported_and_fragile_passes_flagged(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, "--fragile-margin", "1.0")
    result.stdout.fnmatch_lines(["*tool probabilities: get_weather *, get_stock_price *"])
    results = json.loads((pytester.path / "reports" / "results.json").read_text())
    cases = {case["id"]: case for case in results["candidate"]["cases"]}
    assert set(cases["oslo-wrong"]["tool_probabilities"]) == {"get_weather", "get_stock_price"}
    assert sum(cases["oslo-wrong"]["tool_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert cases["oslo-wrong"]["margin"] < 0  # it called get_weather: that is where its probability went
    expected_fragile = sorted(i for i, case in cases.items() if case["passed"] and case["margin"] < 1.0)
    assert sorted(results["fragile"]) == expected_fragile and expected_fragile
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert f"## Fragile passes ({len(expected_fragile)})" in markdown


def test_no_confidence_skips_the_scoring(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, "--no-confidence")
    assert "tool probabilities" not in result.stdout.str()
    cases = json.loads((pytester.path / "reports" / "results.json").read_text())["candidate"]["cases"]
    assert all(case["tool_probabilities"] is None and case["margin"] is None for case in cases)
    assert "Fragile passes" not in (pytester.path / "reports" / "accuracy.md").read_text()


def test_generation_is_identical_across_batch_sizes(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    outputs = []
    for batch_size in ("1", "16"):
        run(pytester, tiny_checkpoint, "--batch-size", batch_size)
        cases = json.loads((pytester.path / "reports" / "results.json").read_text())["candidate"]["cases"]
        outputs.append([(case["id"], case["output"]) for case in cases])
    assert outputs[0] == outputs[1]


def test_other_yaml_files_are_left_alone(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", config="name: not a case file\nitems: [1, 2]\n")
    pytester.makefile(".yml", policy=case_file(PASSING))
    result = run(pytester, tiny_checkpoint)
    result.assert_outcomes(passed=2)


def test_held_out_prompt_seen_in_training_is_a_collection_error(pytester, tiny_checkpoint):
    pytester.makefile(
        ".yaml",
        trainer=case_file(
            "- prompt: Something else entirely\n  expect: get_weather\n",
            extra="train:\n  - prompt: what is the  WEATHER in paris?\n    call: get_weather\n    args: {city: Paris}\n",
        ),
    )
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str()
    assert (
        "policy.yaml: cases[0] (id 'paris'): field 'prompt': 'What is the weather in Paris?' is also a training "
        "prompt (test_held_out_prompt_seen_in_training_is_a_collection_error0/trainer.yaml train[0])" in output
    )
    result.stdout.fnmatch_lines(["*1 error*"])


def test_missing_model_without_training_examples_is_one_clear_error(pytester, tmp_path):
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, tmp_path / "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pytest-toolsel could not train {tmp_path / 'nope'}: nothing to train on*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "is not a Hugging Face model directory: no config.json (it is empty)"),
        ("config-only", "has a config.json but no weights"),
        ("corrupt", "could not load the weights of"),
        ("no-template", "has no chat template"),
    ],
)
def test_broken_model_directory_is_one_clear_error(pytester, tmp_path, tiny_checkpoint, layout, message):
    import shutil

    broken = tmp_path / layout
    if layout == "empty":
        broken.mkdir()
    elif layout == "config-only":
        broken.mkdir()
        shutil.copy(tiny_checkpoint / "config.json", broken)
    else:
        shutil.copytree(tiny_checkpoint, broken)
        if layout == "corrupt":
            (broken / "model.safetensors").write_bytes(b"not a safetensors file")
        else:
            (broken / "chat_template.jinja").unlink()
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, broken)
    result.assert_outcomes(failed=1)  # the session stops at the first: one message, not one per case
    result.stdout.fnmatch_lines([f"*pytest-toolsel could not load a model:*{message}*"])
    assert "Traceback" not in result.stdout.str()


TRAIN = """train:
  - prompt: Weather in Madrid right now?
    call: get_weather
    args: {city: Madrid}
  - prompt: What does INITECH trade at?
    call: get_stock_price
    args: {ticker: INITECH}
"""


def test_missing_checkpoint_is_trained_then_reused(pytester, tiny_base):
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    args = ["--base-model", str(tiny_base), "--recipe-set", "epochs=1", "--recipe-set", "eval_fraction=0"]
    first = pytester.runpytest("-p", "no:cacheprovider", "--model", "ckpt", *args)
    first.stdout.fnmatch_lines(["*pytest-toolsel: training*", "training ckpt from *tiny-base* on 2 examples*",
                                "checkpoint written to ckpt in *"])
    checkpoint = pytester.path / "ckpt"
    metadata = json.loads((checkpoint / "toolsel.json").read_text())
    assert metadata["base_model"] == str(tiny_base) and metadata["train_examples"] == 2
    assert metadata["recipe"]["epochs"] == 1
    assert (pytester.path / "reports" / "loss_curve.png").stat().st_size > 0
    assert not [p for p in pytester.path.iterdir() if ".partial-" in p.name]
    assert json.loads((pytester.path / "reports" / "results.json").read_text())["baseline"]["model"] == str(tiny_base)

    second = pytester.runpytest("-p", "no:cacheprovider", "--model", "ckpt", *args)
    assert "pytest-toolsel: training" not in second.stdout.str()
    assert (checkpoint / "toolsel.json").read_text() == json.dumps(metadata, indent=2) + "\n"


def test_a_file_of_training_examples_only_is_trained_on_and_yields_no_tests(pytester, tiny_base):
    """Drills of a skill in a case file of their own: its examples join the others', its tools its own."""
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    drills = TOOLS_YAML.replace("get_stock_price", "get_quote") + TRAIN.replace("get_stock_price", "get_quote")
    pytester.makefile(".yaml", drills=drills + "  - prompt: Quote for GLOBEX please\n    call: get_quote\n"
                      "    args: {ticker: GLOBEX}\n")
    args = ["--base-model", str(tiny_base), "--recipe-set", "epochs=1", "--recipe-set", "eval_fraction=0"]
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--model", "ckpt", *args)
    result.stdout.fnmatch_lines(["*collected 2 items", "training ckpt from *tiny-base* on 5 examples*"])
    assert json.loads((pytester.path / "ckpt" / "toolsel.json").read_text())["train_examples"] == 5
    tests = [line for line in result.stdout.lines if re.match(r"\S+\.yaml::\S+ (PASSED|FAILED)", line)]
    assert len(tests) == 2 and all(line.startswith("policy.yaml::") for line in tests), tests


def test_a_missing_checkpoint_in_an_existing_directory_is_trained_there_not_looked_up_on_the_hub(pytester, tiny_base):
    """`--model ckpts/v2` reads like a hub id (owner/name), but ckpts/ is a directory here."""
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    (pytester.path / "ckpts").mkdir()
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", "ckpts/v2", "--base-model", str(tiny_base),
                                "--no-baseline", "--recipe-set", "epochs=1", "--recipe-set", "eval_fraction=0")
    result.stdout.fnmatch_lines(["training ckpts/v2 from *tiny-base* on 2 examples*",
                                 f"checkpoint written to {Path('ckpts') / 'v2'} in *"])
    assert (pytester.path / "ckpts" / "v2" / "toolsel.json").is_file()
    assert json.loads((pytester.path / "reports" / "results.json").read_text())["candidate"]["model"] == "ckpts/v2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "runs/2024/v2"], "--model runs/2024/v2: names neither a path here (there is no directory "
                                      "runs/2024) nor a hub id (owner/name); write ./runs/2024/v2 for a local directory"),
        (["--base-model", "my base/v1"], "--base-model my base/v1: names neither a path here*write ./my base/v1 for"),
        (["--model", "google/functiongemma-270m-it", "--retrain"],
         "--retrain needs a local --model directory, not google/functiongemma-270m-it"),
    ],
    ids=["model", "base-model", "retrain-hub-id"],
)
def test_a_model_value_that_names_nothing_clear_is_a_usage_error(pytester, args, message):
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert not (pytester.path / "runs").exists()


def test_a_hub_id_is_loaded_from_the_hub_not_trained(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing here reaches the hub: the lookup itself is the point
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", "toolsel-tests/no-such-model", "--no-baseline")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-toolsel could not load a model: could not load the tokenizer of "
                                 "toolsel-tests/no-such-model*"])
    assert "pytest-toolsel: training" not in result.stdout.str()
    assert not (pytester.path / "toolsel-tests").exists()


def test_changed_training_data_warns_that_the_checkpoint_is_stale(pytester, tiny_base):
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN))
    args = ["--model", "ckpt", "--no-baseline", "--base-model", str(tiny_base), "--recipe-set", "epochs=1"]
    pytester.runpytest("-p", "no:cacheprovider", *args)
    pytester.makefile(".yaml", policy=case_file(PASSING, extra=TRAIN.replace("Madrid", "Lima")))
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.stdout.fnmatch_lines(["*stale checkpoint: ckpt was trained on other training examples*retrain with --retrain*"])
    retrained = pytester.runpytest("-p", "no:cacheprovider", *args, "--retrain")
    retrained.stdout.fnmatch_lines(["*pytest-toolsel: training*"])
    assert "stale checkpoint" not in retrained.stdout.str()
    # A file of held-out prompts alone (an extra evaluation set) carries no training data to compare.
    (pytester.path / "policy.yaml").unlink()
    pytester.makefile(".yaml", extra_eval=case_file(PASSING))
    evaluated = pytester.runpytest("-p", "no:cacheprovider", *args)
    outcomes = evaluated.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2  # evaluated, not retrained
    assert "pytest-toolsel: training" not in evaluated.stdout.str()
    assert "stale checkpoint" not in evaluated.stdout.str()


def test_shipped_cases_run_end_to_end(pytester, tiny_checkpoint, tiny_base):
    """The real cases/ directory, both policies and the copying drills (training examples only), as
    `pytest cases/ --model DIR` runs it (on a tiny model that knows nothing of either policy, so the
    outcome is not the point: the plumbing is)."""
    shipped = sorted((Path(__file__).resolve().parents[2] / "cases").glob("*.yaml"))
    assert [path.name for path in shipped] == ["copying_drills.yaml", "mobile_actions.yaml", "search_policy.yaml"]
    (pytester.path / "cases").mkdir()
    for path in shipped:
        (pytester.path / "cases" / path.name).write_text(path.read_text())
    result = pytester.runpytest("-p", "no:cacheprovider", "cases/", "--model", str(tiny_checkpoint),
                                "--base-model", str(tiny_base))
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("xfailed", 0) == 20 + 47  # min_accuracy: misses xfail
    results = json.loads((pytester.path / "reports" / "results.json").read_text())
    # ...and the session fails on each policy's own bar, which the tiny model cannot reach.
    assert results["candidate"]["passed"] < 18
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*suite internal-vs-public-search (*search_policy.yaml) scored */20, below its min_accuracy 90%*",
    ])
    result.stdout.fnmatch_lines(["*suite mobile-actions (*mobile_actions.yaml) scored */47, below its min_accuracy 95%*"])
    for run in ("candidate", "baseline"):
        assert results[run]["total"] == 67
        suites = [case["suite"] for case in results[run]["cases"]]
        assert sorted(set(suites)) == ["internal-vs-public-search", "mobile-actions"]
        assert suites.count("mobile-actions") == 47
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert "internal-vs-public-search" in markdown
    # As a PR comment: regressions come first, and a list of more than ten cases folds away.
    assert markdown.index("## Regressed") < markdown.index("## Still failing") < markdown.index("## Fixed")
    passed_before = {case["id"]: case["passed"] for case in results["baseline"]["cases"]}
    still = [c for c in results["candidate"]["cases"] if not c["passed"] and not passed_before[c["id"]]]
    section = markdown.split("## Still failing")[1].split("## Fixed")[0]
    assert f"({len(still)})" in section.splitlines()[0]
    assert ("<details><summary>" in section) == (len(still) > 10)


def run_cached(pytester, checkpoint, *args):
    return pytester.runpytest("--model", str(checkpoint), "--no-baseline", *args)


def test_unchanged_rerun_reuses_answers_from_pytest_cache(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    first = run_cached(pytester, tiny_checkpoint)
    first.assert_outcomes(passed=2, failed=1)
    assert "reused from pytest's cache" not in first.stdout.str()
    report = (pytester.path / "reports" / "results.json").read_text()
    second = run_cached(pytester, tiny_checkpoint)
    second.assert_outcomes(passed=2, failed=1)
    second.stdout.fnmatch_lines([f"3/3 answers of {tiny_checkpoint} reused from pytest's cache*"])
    cases = lambda text: json.loads(text)["candidate"]["cases"]  # noqa: E731
    assert cases((pytester.path / "reports" / "results.json").read_text()) == cases(report)


@pytest.mark.parametrize(
    ("change", "reused"),
    [
        ("edit-one-prompt", "2/3"),
        ("edit-model-file", None),
        ("cache-clear", None),
        ("max-new-tokens", None),
        ("no-cacheprovider", None),
    ],
)
def test_results_cache_is_invalidated_by_any_change(pytester, tiny_checkpoint, tmp_path, change, reused):
    model = shutil.copytree(tiny_checkpoint, tmp_path / "model")
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    run_cached(pytester, model).assert_outcomes(passed=2, failed=1)
    args = []
    if change == "edit-one-prompt":
        pytester.makefile(".yaml", policy=case_file(PASSING + MISSING.replace("Oslo", "Bergen")))
    elif change == "edit-model-file":
        config = json.loads((model / "generation_config.json").read_text())
        (model / "generation_config.json").write_text(json.dumps({**config, "note": "changed"}))
    else:
        args = {"cache-clear": ["--cache-clear"], "max-new-tokens": ["--max-new-tokens", "48"],
                "no-cacheprovider": ["-p", "no:cacheprovider"]}[change]
    result = run_cached(pytester, model, *args)
    if reused:
        result.stdout.fnmatch_lines([f"{reused} answers of * reused from pytest's cache*"])
    else:
        assert "reused from pytest's cache" not in result.stdout.str()


def test_xdist_workers_split_the_cases_and_the_controller_writes_the_same_report(pytester, tiny_checkpoint, tiny_base):
    cases = PASSING + MISSING + "- prompt: Price of GLOBEX shares please\n  expect: get_stock_price\n"
    pytester.makefile(".yaml", policy=case_file(cases))
    pytester.makefile(".yaml", other=case_file(PASSING, extra="policy: other\n"))
    runs = runs_without_and_with_xdist(pytester, "--model", str(tiny_checkpoint), "--base-model", str(tiny_base))
    for _, _, result in runs.values():
        result.assert_outcomes(passed=5, failed=1)
    assert runs["2"][:2] == runs["0"][:2]
    shares = re.search(r"pytest-xdist: gw0 answered (\d+), gw1 answered (\d+) of 6 cases", runs["2"][2].stdout.str())
    assert shares and sorted(map(int, shares.groups())) == [3, 3]


@pytest.mark.parametrize(
    ("candidate", "before", "outcomes", "exit_code"),
    [
        ("tiny_base", "tiny_checkpoint", {"failed": 2, "xfailed": 1}, pytest.ExitCode.TESTS_FAILED),
        ("tiny_checkpoint", "tiny_base", {"passed": 2, "xfailed": 1}, pytest.ExitCode.OK),
    ],
    ids=["candidate-regresses", "candidate-improves"],
)
def test_regressions_only_fails_just_the_cases_the_before_model_passed(
    pytester, request, candidate, before, outcomes, exit_code
):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    candidate_dir, before_dir = request.getfixturevalue(candidate), request.getfixturevalue(before)
    result = run(pytester, candidate_dir, "--regressions-only", "-rx", base=before_dir)
    result.assert_outcomes(**outcomes)
    assert result.ret == exit_code
    result.stdout.fnmatch_lines([f"*oslo-wrong*not a regression: the before model {before_dir} missed it too*"])


def test_regressions_only_needs_a_before_model(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, tiny_checkpoint, "--regressions-only")  # run() adds --no-baseline
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--regressions-only compares with the before model*--no-baseline*"])


@pytest.fixture(scope="module")
def sloppy_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """The tiny checkpoint's twin taught to pick the right tools but call them wrongly: Paris's weather
    with an argument get_weather does not declare, ACME's price with a number for the ticker string."""
    sloppy = {
        "What is the weather in Paris?": [("get_weather", {"city": "Paris", "units": "metric"})],
        "How much is ACME stock?": [("get_stock_price", {"ticker": 42})],
    }
    lessons = [(prompt, sloppy.get(prompt, calls)) for prompt, calls in LESSONS]
    model = tiny.build_model(tiny_tokenizer, seed=0)
    tiny.teach(model, tiny_tokenizer, tiny.lesson_texts(lessons, TOOLS))
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("sloppy-checkpoint"))


# Paris's weather again, where the case wants stocks: a miss for the tool choice itself.
PARIS_WRONG = """- prompt: What is the weather in Paris?
  expect: get_stock_price
  id: paris-wrong
"""
UNITS = "get_weather: undeclared argument 'units' (declared: city)"
TICKER = "get_stock_price.ticker: expected string, got integer 42"


def test_schema_problems_are_reported_and_fail_the_test_only_with_strict_calls(pytester, sloppy_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + PARIS_WRONG))
    lenient = run(pytester, sloppy_checkpoint)
    lenient.assert_outcomes(passed=2, failed=1)  # the right tools, called wrongly, pass: the tool choice is the verdict
    lenient.stdout.fnmatch_lines([
        "*tool selection failed: did not call get_stock_price; called get_weather*",
        f"*schema:     {UNITS}",  # ...and a test that fails for its tool choice lists them too
        "*3 of 3 cases with calls called a tool in a way its schema does not allow*--strict-calls fails them*",
    ])
    cases = {c["id"]: c for c in json.loads((pytester.path / "reports" / "results.json").read_text())["candidate"]["cases"]}
    assert cases["paris"]["passed"] and cases["paris"]["schema_problems"] == [UNITS]
    assert cases["how-much-is-acme-stock"]["schema_problems"] == [TICKER]

    strict = run(pytester, sloppy_checkpoint, "--strict-calls")
    strict.assert_outcomes(failed=3)
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines([
        "*tool selection passed, but the calls do not fit their tool's schema (--strict-calls)",
        "*prompt:*'How much is ACME stock?'",
        f"*schema:     {TICKER}",
    ])
    assert "--strict-calls fails them" not in strict.stdout.str()


def test_strict_calls_counts_against_min_accuracy(pytester, sloppy_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING))
    result = run(pytester, sloppy_checkpoint, "--strict-calls", "--min-accuracy", "0.5", "-rx")
    result.assert_outcomes(xfailed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*FAILED: accuracy with --strict-calls 0.0% (0/2) is below --min-accuracy 50%*",
        f"XFAIL *::paris - invalid call, counted against min accuracy 50%: calls do not fit their tool's schema "
        f"(--strict-calls): {UNITS}",
    ])


def test_reports_show_valid_and_exact_calls_and_which_tool_went_where(pytester, tiny_checkpoint, tiny_base):
    exact = "- prompt: What is the weather in Paris?\n  id: paris-exact\n  expect: get_weather\n  args: {city: Paris}\n"
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING + exact))
    result = run(pytester, tiny_checkpoint, base=tiny_base)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"report written to {Path('reports') / 'confusion.png'}"])
    reports = pytester.path / "reports"
    results = json.loads((reports / "results.json").read_text())
    candidate = results["candidate"]
    # The taught calls are all valid, and the one case that gives its arguments gets exactly them.
    assert candidate["valid_calls"]["valid"] == candidate["valid_calls"]["cases_with_calls"] == 4
    assert (candidate["exact_calls"]["exact"], candidate["exact_calls"]["cases_with_expected_calls"]) == (1, 1)
    assert candidate["policies"]["policy"]["confusion"] == {
        "rows": ["get_weather", "get_stock_price"],
        "columns": ["get_weather", "get_stock_price", "none", "malformed"],
        "counts": [[2, 0, 0, 0], [1, 1, 0, 0]],  # oslo-wrong: stocks expected, weather called
    }
    assert set(results["baseline"]) >= {"valid_calls", "exact_calls", "policies"}
    markdown = (reports / "accuracy.md").read_text()
    assert "## Which tool went where" in markdown and "each cell reads before → after" in markdown
    table = markdown.split("### policy\n\n")[1].split("\n\n")[0].splitlines()
    # The untrained before model writes on until the budget stops it: its answers are `cut`, not malformed.
    assert [cell.strip() for cell in table[0].strip("|").split("|")][1:] == [
        "get_weather", "get_stock_price", "none", "malformed", "cut",
    ]
    assert re.fullmatch(r"\| get_stock_price +\| \d → 1 +\| \d → 1 +\|.*", table[3])
    assert (reports / "confusion.png").read_bytes()[:4] == b"\x89PNG"

