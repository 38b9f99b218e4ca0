"""`toolsel_model`: a user's own Python tests next to a case file, run as users run them (pytester)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from conftest import TOOLS, case_file, runs_without_and_with_xdist
from test_plugin import OSLO_MISS_REPORT, PASSING

POLICY = PASSING  # paris, and ACME stock

# A user's test module: prompts built in code, a policy's tools and tools given in code, a batch,
# argument checks and a deliberate miss.
USER_TESTS = f"""\
import pytest

TOOLS = {TOOLS!r}
CITIES = {{"Paris": "What is the weather in Paris?", "Oslo": "Is it raining in Oslo today?"}}


@pytest.mark.parametrize("city", sorted(CITIES))
def test_weather_by_city(toolsel_model, city):
    answer = toolsel_model.assert_selects(CITIES[city], "get_weather", args={{"city": city}}, policy="policy")
    assert answer.calls[0].arguments == {{"city": city}}


def test_a_batch_with_tools_from_code(toolsel_model):
    answers = toolsel_model.ask_many(["How much is ACME stock?", "Tell me a joke."], tools=TOOLS, confidence=True)
    assert [a.tools_called for a in answers] == [("get_stock_price",), ()]
    assert max(answers[0].probabilities, key=answers[0].probabilities.get) == "get_stock_price"
    toolsel_model.assert_selects(answers[0], "get_stock_price", args={{"ticker": "ACME"}})
    toolsel_model.assert_selects(answers[1], None)


def test_deliberate_miss(toolsel_model):
    toolsel_model.assert_selects("Is it raining in Oslo today?", "get_stock_price", policy="policy")

"""
MISS_LINE = USER_TESTS.splitlines().index(
    '    toolsel_model.assert_selects("Is it raining in Oslo today?", "get_stock_price", policy="policy")') + 1
# test ids as pytest names them, in collection order; the second assertion of a test gets #2.
RECORDED = [
    "test_weather_by_city[Oslo]",
    "test_weather_by_city[Paris]",
    "test_a_batch_with_tools_from_code",
    "test_a_batch_with_tools_from_code#2",
    "test_deliberate_miss",
]


def ROOT(pytester) -> list[str]:
    """The project's root for node ids (else pytest takes the common ancestor of --model's path and the tests')."""
    return [f"--rootdir={pytester.path}"]


def write_project(pytester):
    pytester.makefile(".yaml", policy=case_file(POLICY))
    pytester.makepyfile(test_catalogue=USER_TESTS)


def results(pytester, report_dir="reports") -> dict:
    return json.loads((pytester.path / report_dir / "results.json").read_text())


def test_python_tests_ask_the_same_model_and_count_in_the_reports(pytester, tiny_checkpoint, tiny_base):
    write_project(pytester)
    result = pytester.runpytest(*ROOT(pytester), "-p", "no:cacheprovider", "--model", str(tiny_checkpoint), "--base-model", str(tiny_base))
    result.assert_outcomes(passed=5, failed=1)
    document = results(pytester)
    candidate, baseline = document["candidate"], document["baseline"]
    python_cases = [case for case in candidate["cases"] if case["file"] == "test_catalogue.py"]
    assert [case["id"] for case in python_cases] == RECORDED
    assert [case["test"] for case in python_cases] == [f"test_catalogue.py::{id}" for id in RECORDED]
    assert candidate["total"] == 2 + len(RECORDED)
    # The before model answered the Python tests' prompts too, under the same ids.
    assert baseline["model"] == str(tiny_base)
    assert [case["id"] for case in baseline["cases"]] == [case["id"] for case in candidate["cases"]]
    miss = next(case for case in python_cases if case["id"] == "test_deliberate_miss")
    assert miss["expected"] == ["get_stock_price"] and miss["called"] == ["get_weather"] and not miss["passed"]
    oslo = python_cases[0]
    assert oslo["suite"] == "policy" and oslo["exact_call"] is True and oslo["passed"]
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert "`test_deliberate_miss` (policy)" in markdown


def test_a_miss_fails_with_the_report_a_case_file_prints(pytester, tiny_checkpoint):
    write_project(pytester)
    result = pytester.runpytest(*ROOT(pytester), "-p", "no:cacheprovider", "--model", str(tiny_checkpoint), "--no-baseline",
                                "policy.yaml", "test_catalogue.py::test_deliberate_miss")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([*OSLO_MISS_REPORT, f"*asserted at: *test_catalogue.py:{MISS_LINE}"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("bar", "exit_code", "line"),
    [
        ("0.8", pytest.ExitCode.OK, "*XFAIL*test_deliberate_miss*tool-selection miss, counted against min accuracy 80%*"),
        ("0.9", pytest.ExitCode.TESTS_FAILED, "FAILED: accuracy 85.7% (6/7) is below --min-accuracy 90%"),
    ],
)
def test_min_accuracy_counts_python_misses_as_it_counts_case_misses(pytester, tiny_checkpoint, bar, exit_code, line):
    write_project(pytester)
    result = pytester.runpytest(*ROOT(pytester), "-p", "no:cacheprovider", "--model", str(tiny_checkpoint), "--no-baseline",
                                "--min-accuracy", bar, "-rx")
    result.assert_outcomes(passed=5, xfailed=1)
    result.stdout.fnmatch_lines([line])
    assert result.ret == exit_code


def spy_on_loading(pytester):
    """A conftest that counts the models the session loads (it wraps the real loader)."""
    pytester.makeconftest(
        """
        import pytest_toolsel.plugin.runs as runs

        real = runs.load_model
        def counted(*args, **kwargs):
            with open("loads.txt", "a") as log:
                log.write(str(args[0]) + "\\n")
            return real(*args, **kwargs)
        runs.load_model = counted
        """
    )


def test_an_unchanged_rerun_loads_no_model(pytester, tiny_checkpoint, tiny_base):
    write_project(pytester)
    spy_on_loading(pytester)
    args = ["--model", str(tiny_checkpoint), "--base-model", str(tiny_base)]
    pytester.runpytest(*ROOT(pytester), *args).assert_outcomes(passed=5, failed=1)
    loads = pytester.path / "loads.txt"
    assert loads.read_text().splitlines() == [str(tiny_checkpoint), str(tiny_base)]  # each once
    first = results(pytester)["candidate"]["cases"]
    loads.unlink()
    second = pytester.runpytest(*ROOT(pytester), *args)
    second.assert_outcomes(passed=5, failed=1)
    assert not loads.exists()
    total = 2 + len(RECORDED)
    second.stdout.fnmatch_lines([f"{total}/{total} answers of {tiny_checkpoint} reused*",
                                 f"{total}/{total} answers of {tiny_base} reused*"])
    assert results(pytester)["candidate"]["cases"] == first


def test_xdist_workers_send_the_python_tests_outcomes_to_the_report(pytester, tiny_checkpoint, tiny_base):
    write_project(pytester)
    runs = runs_without_and_with_xdist(pytester, "--model", str(tiny_checkpoint), "--base-model", str(tiny_base))
    for _, _, result in runs.values():
        result.assert_outcomes(passed=5, failed=1)
    assert re.search(r"pytest-xdist: gw0 answered \d+, gw1 answered \d+ of 7 cases", runs["2"][2].stdout.str())
    assert runs["2"][:2] == runs["0"][:2]
    assert len(runs["2"][0]["baseline"]["cases"]) == 7


def test_a_missing_model_is_trained_first_for_python_tests_alone(pytester, tiny_base):
    train = textwrap.dedent(
        """\
        train:
          - prompt: Weather for Madrid?
            call: get_weather
            args: {city: Madrid}
        """
    )
    write_project(pytester)
    pytester.makefile(".yaml", policy=case_file(POLICY, extra=train))
    result = pytester.runpytest(
        *ROOT(pytester), "-p", "no:cacheprovider", "--model", "ckpt", "--base-model", str(tiny_base), "--no-baseline",
        "--recipe-set", "epochs=1", "--recipe-set", "eval_fraction=0", "-k", "test_deliberate_miss",
    )
    result.stdout.fnmatch_lines(["*pytest-toolsel: training*", "training ckpt from *tiny-base* on 1 examples*"])
    assert (pytester.path / "ckpt" / "toolsel.json").is_file()
    assert [case["id"] for case in results(pytester)["candidate"]["cases"]] == ["test_deliberate_miss"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('toolsel_model.assert_selects("Weather in Oslo?", "get_wether", policy="policy")',
         "test_bad.py:2: test_bad.py::test_bad: field 'expect': 'get_wether' is not a declared tool "
         "(declared: get_weather, get_stock_price)"),
        ('toolsel_model.ask("Weather in Oslo?")',
         "test_bad.py:2: test_bad.py::test_bad: give the tools to ask with: policy= (a collected policy or a case "
         "file) or tools="),
        ('toolsel_model.ask("Weather in Oslo?", policy="polcy")',
         "test_bad.py:2: test_bad.py::test_bad: no collected case file has the policy 'polcy' and no such file "
         "exists (collected policies: policy)"),
        ('toolsel_model.ask("Weather?", tools=[{"name": "f", "parameters": {"properties": {}}}])',
         "test_bad.py:2: test_bad.py::test_bad: tools[0] (f): field 'parameters.type' is missing"),
        ('toolsel_model.ask([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], '
         'policy="policy")',
         "test_bad.py:2: test_bad.py::test_bad: the conversation must end where the model answers next"),
        ('toolsel_model.assert_selects("Weather for Madrid?", "get_weather", policy="policy")',
         "test_bad.py::test_bad: the prompt 'Weather for Madrid?' is also a training prompt (policy.yaml train[0])"),
    ],
    ids=["undeclared-tool", "no-tools", "unknown-policy", "bad-schema", "conversation-end", "leaked-prompt"],
)
def test_bad_input_is_one_clear_failure(pytester, tiny_checkpoint, body, message):
    train = "train:\n  - prompt: Weather for Madrid?\n    call: get_weather\n    args: {city: Madrid}\n"
    pytester.makefile(".yaml", policy=case_file(POLICY, extra=train))
    pytester.makepyfile(test_bad=f"\n\ndef test_bad(toolsel_model):\n    {body}\n")
    result = pytester.runpytest(*ROOT(pytester), "-p", "no:cacheprovider", "--model", str(tiny_checkpoint), "--no-baseline")
    result.assert_outcomes(passed=2, failed=1)
    assert message in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


CONVERSATION = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "name": "get_weather", "content": {"temperature": 21}},
    {"role": "user", "content": "How much is ACME stock?"},
]


def test_a_conversation_reaches_the_model_whole_and_is_reported(pytester, tiny_checkpoint):
    """The model answers the whole conversation: its output is what generating from the conversation,
    rendered by the checkpoint's own template, gives; a miss shows the conversation."""
    import torch

    from pytest_toolsel.functiongemma.parsing import parse_output
    from pytest_toolsel.inference.generation import GenerationSettings, generate
    from pytest_toolsel.models.loading import load_model

    loaded = load_model(str(tiny_checkpoint), torch.device("cpu"))
    rendered = loaded.tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, add_generation_prompt=True, tokenize=False)
    assert "response:get_weather{temperature:21}<end_function_response>How much is ACME stock?" in rendered
    expected = generate(loaded, [rendered], GenerationSettings())[0].text
    wrong = "get_weather" if "get_weather" not in parse_output(expected).called else None  # a deliberate miss
    pytester.makefile(".yaml", policy=case_file(POLICY))
    pytester.makepyfile(
        test_conversation=f"""
        def test_after_a_tool_response(toolsel_model):
            answer = toolsel_model.ask({CONVERSATION!r}, policy="policy.yaml")  # a case file not collected
            assert answer.prompt == "How much is ACME stock?" and answer.output == {expected!r}
            toolsel_model.assert_selects(answer, {wrong!r})
        """
    )
    result = pytester.runpytest(*ROOT(pytester), "-p", "no:cacheprovider", "--model", str(tiny_checkpoint),
                                "--no-baseline", "test_conversation.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tool selection failed*", "*conversation:*", "*user: 'What is the weather in Paris?'*",
                                 '*assistant: get_weather({"city": "Paris"})*', '*tool: get_weather -> {"temperature": 21}*',
                                 "*user: 'How much is ACME stock?'*", "*prompt:*'How much is ACME stock?'*"])
    (case,) = results(pytester)["candidate"]["cases"]
    assert case["output"] == expected and case["conversation"] == CONVERSATION and not case["passed"]
