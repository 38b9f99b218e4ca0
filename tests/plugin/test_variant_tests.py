"""--variants and a case file's `variants:`: each case asked again with its tools shuffled or with
distractor tools added, a test of its own judged by the case's expectation and counted beside it.

The checkpoint here is taught to fail invariance on purpose: it answers Paris's weather with the
stock tool when the stock tool is declared first, and Oslo's with send_email whenever send_email is
declared. So the flips are known in advance, and the tests can check that each is found and counted.
"""

from __future__ import annotations

import json
import re

import pytest
import tiny
from conftest import STOCKS, TOOLS_YAML, WEATHER, case_file, runs_without_and_with_xdist

from pytest_toolsel.functiongemma.chat_format import as_function_tool

EMAIL = as_function_tool("send_email", "Send an email to a person.", {
    "type": "object", "properties": {"to": {"type": "string", "description": "address"}}, "required": ["to"]})
EMAIL_YAML = """\
  - name: send_email
    description: Send an email to a person.
    parameters:
      type: object
      properties:
        to: {type: string, description: address}
      required: [to]
"""
DISTRACTORS = "distractors:\n" + EMAIL_YAML
PARIS, OSLO, ACME = "What is the weather in Paris?", "Is it raining in Oslo today?", "How much is ACME stock?"
CASES = f"""\
- {{prompt: {PARIS}, expect: get_weather, id: paris}}
- {{prompt: {PARIS}, expect: get_stock_price, id: paris-stocks}}
- {{prompt: {OSLO}, expect: get_weather, id: oslo}}
- {{prompt: {ACME}, expect: get_stock_price, id: acme}}
"""
# What the checkpoint does, so what each test must say: as written, shuffled, with send_email added.
OUTCOMES = {
    "paris": ("PASSED", "FAILED", "PASSED"),
    "paris-stocks": ("FAILED", "PASSED", "FAILED"),
    "oslo": ("PASSED", "PASSED", "FAILED"),
    "acme": ("PASSED", "PASSED", "PASSED"),
}


@pytest.fixture(scope="module")
def order_sensitive_checkpoint(tmp_path_factory, tiny_tokenizer):
    weather = lambda city: [("get_weather", {"city": city})]  # noqa: E731
    stocks = lambda ticker: [("get_stock_price", {"ticker": ticker})]  # noqa: E731
    email = [("send_email", {"to": "oslo@example.com"})]
    plan = [
        ([WEATHER, STOCKS], {PARIS: weather("Paris"), OSLO: weather("Oslo"), ACME: stocks("ACME")}),
        ([STOCKS, WEATHER], {PARIS: stocks("PARIS"), OSLO: weather("Oslo"), ACME: stocks("ACME")}),
        *(([*tools], {PARIS: weather("Paris"), OSLO: email, ACME: stocks("ACME")})
          for tools in ([EMAIL, WEATHER, STOCKS], [WEATHER, EMAIL, STOCKS], [WEATHER, STOCKS, EMAIL])),
    ]
    pairs = [pair for tools, answers in plan for pair in tiny.lesson_texts(list(answers.items()), tools)]
    model = tiny.build_model(tiny_tokenizer, seed=0)
    tiny.teach(model, tiny_tokenizer, pairs, steps=400)
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("order-sensitive"))


def run(pytester, checkpoint, *args, base=None):
    extra = ["--base-model", str(base)] if base else ["--no-baseline"]
    return pytester.runpytest("-p", "no:cacheprovider", "--model", str(checkpoint), *extra, *args)


def verdicts(result) -> dict[str, str]:
    """Test id -> PASSED / FAILED / XFAIL, from a -v run."""
    found = (re.match(r"^\S+::(\S+) (PASSED|FAILED|XFAIL)", line) for line in result.stdout.lines)
    return {match[1]: match[2] for match in found if match}


def results(pytester) -> dict:
    return json.loads((pytester.path / "reports" / "results.json").read_text())


def test_each_variant_is_a_test_with_the_case_id_and_the_variant(pytester):
    pytester.makefile(".yaml", policy=case_file(CASES, extra=DISTRACTORS))
    listed = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "--variants", "distractors,shuffled")
    ids = [line.split("::")[1] for line in listed.stdout.lines if line.startswith("policy.yaml::")]
    assert ids == [f"{case}{variant}" for case in OUTCOMES for variant in ("", "[shuffled]", "[distractors]")]
    # The case file asks for its own variants; -k selects among them as among any tests.
    pytester.makefile(".yaml", policy=case_file(CASES, extra="variants: [shuffled]\n"))
    selected = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "-k", "paris and shuffled")
    assert [line for line in selected.stdout.lines if "::" in line] == [
        "policy.yaml::paris[shuffled]", "policy.yaml::paris-stocks[shuffled]"]


def test_variants_are_judged_by_the_case_expectation_and_their_flips_counted(
    pytester, order_sensitive_checkpoint, tiny_base
):
    pytester.makefile(".yaml", policy=case_file(CASES, extra=DISTRACTORS))
    result = run(pytester, order_sensitive_checkpoint, "-v", "--variants", "shuffled,distractors", base=tiny_base)
    result.stdout.fnmatch_lines(["*collected 12 items"])  # the variants are tests like any other
    assert verdicts(result) == {
        f"{case}{variant}": outcome for case, outcomes in OUTCOMES.items()
        for variant, outcome in zip(("", "[shuffled]", "[distractors]"), outcomes)
    }
    result.stdout.fnmatch_lines([
        "*tool selection failed: did not call get_weather; called get_stock_price*",
        "*expected:   get_weather",
        "*tools:      get_stock_price, get_weather (declared so: shuffled)",
    ])
    document = results(pytester)
    assert (document["candidate"]["passed"], document["candidate"]["total"]) == (3, 4)  # the cases as written
    counts = document["invariance"]["candidate"]["policies"]["policy"]
    assert {variant: (c["cases"], c["kept"], [f["id"] for f in c["flipped"]]) for variant, c in counts.items()} == {
        "shuffled": (4, 2, ["paris", "paris-stocks"]), "distractors": (4, 3, ["oslo"])}
    assert counts["distractors"]["flipped"][0]["variant"]["called"] == ["send_email"]
    written = {case["id"]: case for case in document["candidate"]["cases"]}
    for variant in document["invariance"]["candidate"]["cases"]:
        assert variant["expected"] == written[variant["of"]]["expected"]  # the same expectation...
        assert variant["prompt"] == written[variant["of"]]["prompt"]
        assert sorted(variant["tools"]) == sorted(["get_weather", "get_stock_price"]
                                                  + (["send_email"] if variant["variant"] == "distractors" else []))
    assert document["invariance"]["baseline"]["policies"]["policy"]["shuffled"]["cases"] == 4  # the before model too
    markdown = (pytester.path / "reports" / "accuracy.md").read_text()
    assert "## Invariance" in markdown and "| kept before |" in markdown.replace("  ", "")
    assert "### Flipped under shuffled: policy (2)" in markdown and "### Flipped under distractors: policy (1)" in markdown
    assert "- `oslo`: 'Is it raining in Oslo today?', expects get_weather; passes as written, fails as distractors " \
           "(added send_email), calling send_email" in markdown
    result.stdout.fnmatch_lines([
        "invariance of policy: shuffled kept 2/4 (flipped: paris, paris-stocks), distractors kept 3/4 (flipped: oslo)"])


def test_distractors_come_from_the_other_collected_policies(pytester, order_sensitive_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    pytester.makefile(".yaml", email=case_file(
        "- {prompt: Email oslo@example.com the weather report, expect: send_email, id: mail}\n",
        extra="policy: email\n", tools="tools:\n" + EMAIL_YAML))
    result = run(pytester, order_sensitive_checkpoint, "-v", "--variants", "distractors", "--distractor-count", "1")
    found = verdicts(result)
    assert {case: found[f"{case}[distractors]"] for case in OUTCOMES} == {c: o[2] for c, o in OUTCOMES.items()}
    variants = {case["id"]: case for case in results(pytester)["invariance"]["candidate"]["cases"]}
    assert sorted(variants["oslo[distractors]"]["tools"]) == ["get_stock_price", "get_weather", "send_email"]
    mail = variants["mail[distractors]"]["tools"]
    assert len(mail) == 2 and "send_email" in mail and set(mail) - {"send_email"} <= {"get_weather", "get_stock_price"}


def test_variant_misses_count_against_the_same_bars(pytester, order_sensitive_checkpoint):
    """The case file asks for the distractors variant; its misses xfail under the file's min_accuracy,
    and the variant must meet that bar as the cases as written must."""
    pytester.makefile(".yaml", policy=case_file(CASES, extra="min_accuracy: 0.7\nvariants: [distractors]\n" + DISTRACTORS))
    result = run(pytester, order_sensitive_checkpoint, "-v")
    assert "shuffled" not in result.stdout.str()
    result.assert_outcomes(passed=5, xfailed=3)  # paris-stocks as written and as variant, oslo as variant
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED: suite policy (*policy.yaml) under distractors scored 2/4, below its "
                                 "min_accuracy 70%"])
    assert not re.search(r"suite policy \([^)]*\) scored", result.stdout.str())  # as written, 3/4 meets it


def test_variants_selected_without_their_cases_are_reported_but_not_counted(pytester, order_sensitive_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES))
    result = run(pytester, order_sensitive_checkpoint, "--variants", "shuffled", "-k", "shuffled")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["invariance of policy: shuffled kept 0/0, 4 without their case as written"])
    assert "was not written" not in result.stdout.str()  # no picture of the cases as written, and no error
    assert "4 shuffled variants of policy ran without their case as written" in (
        pytester.path / "reports" / "accuracy.md").read_text()


def test_a_rerun_reuses_the_variants_answers(pytester, order_sensitive_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES, extra=DISTRACTORS))
    args = ["--model", str(order_sensitive_checkpoint), "--no-baseline", "--variants", "shuffled,distractors"]
    pytester.runpytest(*args)
    again = pytester.runpytest(*args)
    again.stdout.fnmatch_lines([f"12/12 answers of {order_sensitive_checkpoint} reused from pytest's cache*"])
    again.assert_outcomes(passed=8, failed=4)
    reseeded = pytester.runpytest(*args, "--variant-seed", "5", "--distractor-count", "1")
    reseeded.stdout.fnmatch_lines([f"* answers of {order_sensitive_checkpoint} reused from pytest's cache*"])
    assert "12/12 answers" not in reseeded.stdout.str()  # the cases as written are reused; moved variants are not


def test_variants_under_xdist_report_as_without(pytester, order_sensitive_checkpoint):
    pytester.makefile(".yaml", policy=case_file(CASES, extra=DISTRACTORS))
    runs = runs_without_and_with_xdist(pytester, "--model", str(order_sensitive_checkpoint), "--no-baseline",
                                       "--variants", "shuffled,distractors")
    assert runs["2"][:2] == runs["0"][:2]
    assert len(runs["2"][0]["invariance"]["candidate"]["cases"]) == 8
    runs["2"][2].assert_outcomes(passed=8, failed=4)


@pytest.mark.parametrize(
    ("args", "extra", "exit_code", "message"),
    [
        (["--variants", "shufled"], "", pytest.ExitCode.USAGE_ERROR,
         "argument --variants: unknown variant 'shufled'; did you mean 'shuffled'?"),
        (["--variants", "distractors"], "", pytest.ExitCode.INTERRUPTED,
         "policy.yaml: the distractors variant has no tools to add: give the case file a 'distractors:' list"),
        (["--distractor-count", "0"], "", pytest.ExitCode.USAGE_ERROR,
         "argument --distractor-count: must be a whole number of at least 1, got '0'"),
        ([], "variants: [shuffled, distracters]\n", pytest.ExitCode.INTERRUPTED,
         "policy.yaml:16: variants: unknown variant 'distracters'; did you mean 'distractors'?"),
    ],
    ids=["unknown-option-value", "nothing-to-add", "distractor-count", "unknown-key-value"],
)
def test_variants_that_cannot_be_made_are_clear_errors(pytester, args, extra, exit_code, message):
    pytester.makefile(".yaml", policy=case_file(CASES, extra=extra))
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", *args)
    assert result.ret == exit_code
    assert message in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_policy_of_one_tool_gets_no_shuffled_variant_and_says_so(pytester, tiny_checkpoint):
    one_tool = TOOLS_YAML.split("  - name: get_stock_price")[0]
    pytester.makefile(".yaml", policy=case_file(f"- {{prompt: {PARIS}, expect: get_weather, id: paris}}\n", tools=one_tool))
    result = run(pytester, tiny_checkpoint, "-v", "--variants", "shuffled")
    assert list(verdicts(result)) == ["paris"]
    result.stdout.fnmatch_lines(["*policy.yaml: policy declares one tool, so its cases have no shuffled variant"])
